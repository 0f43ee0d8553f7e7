-- The origin a job was submitted to (https://api.example), so that its webhook event carries
-- absolute result URLs even when the cron trigger, which answers no request, ends the job.
-- Jobs from before this migration have none; their events carry result paths instead.
ALTER TABLE jobs ADD COLUMN origin TEXT;

-- The id of the request that created the job (X-Request-Id): the worker sends it with every runner
-- call about the job, so the worker's and the runner's logs name the job by one id.
ALTER TABLE jobs ADD COLUMN request_id TEXT;
