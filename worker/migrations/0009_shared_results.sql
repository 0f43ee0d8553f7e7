-- A cache hit shares the result files of the job that computed them instead of copying them
-- (jobs/result-cache.ts): results_of names that job (NULL: the job's own files, under its prefix).
-- The files go when no job that holds them is left with its results kept (deleted_at IS NULL):
-- the index finds a job's live sharers.
ALTER TABLE jobs ADD COLUMN results_of TEXT;
CREATE INDEX jobs_results_of ON jobs (results_of) WHERE results_of IS NOT NULL AND deleted_at IS NULL;
