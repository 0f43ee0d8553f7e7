-- API keys: only the SHA-256 of the secret is stored; the secret is shown once at creation.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,                -- JSON array
  monthly_quota_mp REAL NOT NULL,      -- input megapixels per calendar month
  rate_limit_per_min INTEGER NOT NULL,
  cdn_origins TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- Every billable (or cache-hit) event; the source of truth for usage.
CREATE TABLE usage_ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  key_id TEXT NOT NULL REFERENCES api_keys(id),
  input_mp REAL NOT NULL,
  output_mp REAL NOT NULL,
  runner_ms INTEGER NOT NULL,
  cache_hit INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (job_id, key_id)
);
CREATE INDEX usage_ledger_key_day ON usage_ledger (key_id, created_at);
