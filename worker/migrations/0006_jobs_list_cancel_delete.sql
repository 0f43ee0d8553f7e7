-- The key's job list (GET /v1/upscales), cancel, delete and progress.
--
-- A canceled job is stored as status 'failed' with canceled_at set, and the API shows it as
-- 'canceled': the CHECK on status (0002) can only change by rebuilding jobs, and D1 cannot safely
-- rebuild a table that another one references (webhook_deliveries.job_id), as it enforces foreign
-- keys in every migration.
ALTER TABLE jobs ADD COLUMN canceled_at INTEGER;
-- Deleted jobs keep their row (usage, idempotency) without their results; GETs answer 410.
ALTER TABLE jobs ADD COLUMN deleted_at INTEGER;
-- Tiles through the model, as the runner last reported them while the job ran.
ALTER TABLE jobs ADD COLUMN tiles_done INTEGER;
ALTER TABLE jobs ADD COLUMN tiles_total INTEGER;

-- The list, newest first, resumed after a cursor (created_at, id): one range of one index, with or
-- without a status filter. Deleted jobs are never listed, so they are not indexed.
CREATE INDEX jobs_key_created ON jobs (key_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX jobs_key_status_created ON jobs (key_id, status, created_at DESC, id DESC) WHERE deleted_at IS NULL;
