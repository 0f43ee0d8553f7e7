-- Every query on a request's or the cron's path reads an index range, never the whole table
-- (test/worker/query-plans.test.ts checks the plans of the jobs queries). Two indexes were missing:
-- the cron's work list (storage/jobs.ts, listUnfinished) scanned every job, finished or not;
CREATE INDEX jobs_unfinished ON jobs (deadline_at) WHERE status IN ('queued', 'running');
-- and an owner's keys (auth/keys.ts, listKeys) scanned every key.
CREATE INDEX api_keys_owner ON api_keys (owner, created_at, id);
