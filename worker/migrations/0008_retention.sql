-- Retention (worker/src/jobs/retention.ts): the cron deletes the results of jobs older than
-- RESULT_TTL_DAYS, oldest first, and marks them (deleted_at), so it walks only jobs whose results
-- are still kept; then it deletes the rows of jobs older than JOB_ROW_TTL_DAYS, oldest first.
CREATE INDEX jobs_results_kept ON jobs (created_at) WHERE deleted_at IS NULL;
CREATE INDEX jobs_created ON jobs (created_at);
