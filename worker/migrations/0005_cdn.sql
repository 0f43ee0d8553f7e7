-- CDN URLs (/cdn/...). Each key gets a signing secret of its own, kept retrievable because the
-- worker verifies with it (shown once, like the webhook secret; keys made before this migration
-- get one at their next rotation), and may allow unsigned URLs for its listed origins.
ALTER TABLE api_keys ADD COLUMN cdn_secret TEXT;
ALTER TABLE api_keys ADD COLUMN cdn_allow_unsigned INTEGER NOT NULL DEFAULT 0;

-- Purges: every variant's cache key includes its source's generation, so raising the generation
-- makes all variants of that source unreachable at once, in every edge cache and in R2.
CREATE TABLE cdn_sources (
  source_hash TEXT PRIMARY KEY,        -- sha256 of the normalized source URL
  generation INTEGER NOT NULL,
  purged_at INTEGER NOT NULL
);
