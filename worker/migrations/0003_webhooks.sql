-- Webhook signing secret of each key (Standard Webhooks "whsec_..."): kept retrievable, because the
-- worker signs with it; shown to the customer once, with the API key secret, and rotated with it.
ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;

-- One delivery per finished job that asked for a webhook (UNIQUE job_id: enqueued exactly once),
-- retried with backoff by the cron trigger until delivered or given up.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,                 -- the webhook-id header: the same on every retry
  job_id TEXT NOT NULL UNIQUE REFERENCES jobs(id),
  key_id TEXT NOT NULL REFERENCES api_keys(id),
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,    -- also a lease: an attempt in flight pushes it forward
  last_status INTEGER,
  delivered_at INTEGER,
  gave_up_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
