-- The origin a job was submitted to (https://api.example), so that its webhook event carries
-- absolute result URLs even when the cron trigger, which answers no request, ends the job.
-- Jobs from before this migration have none; their events carry result paths instead.
ALTER TABLE jobs ADD COLUMN origin TEXT;
