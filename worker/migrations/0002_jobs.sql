-- Job records live in D1, not KV: Idempotency-Key needs an atomic "insert unless present"
-- (UNIQUE below) and a status update must be visible to the next read at once, which KV's
-- eventual consistency (up to 60 s across locations) does not give.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES api_keys(id),
  idempotency_key TEXT,
  request_hash TEXT NOT NULL,          -- sha256 of the image bytes and the normalized options
  cache_key TEXT NOT NULL,             -- request_hash + model version
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  options TEXT NOT NULL,               -- JSON, normalized
  input_width INTEGER NOT NULL,
  input_height INTEGER NOT NULL,
  input_type TEXT NOT NULL,
  backend TEXT NOT NULL,               -- dispatch backend; 'cache' for cache hits
  runner TEXT,                         -- where the job runs (runner base URL, prediction id, ...)
  model TEXT,                          -- JSON {id, version} reported by the runner
  outputs TEXT,                        -- JSON array, once succeeded
  runner_ms INTEGER,
  error TEXT,                          -- JSON {code, title}, once failed
  webhook_url TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deadline_at INTEGER NOT NULL,        -- after this a job still unfinished fails and is refunded
  UNIQUE (key_id, idempotency_key)
);
CREATE INDEX jobs_cache_key ON jobs (cache_key, status);
