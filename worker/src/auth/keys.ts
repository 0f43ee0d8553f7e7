import { z } from "@hono/zod-openapi";
import { randomId, randomToken, sha256Hex, toBase64 } from "../crypto";

/**
 * API keys. The secret is 32 random bytes shown once; D1 keeps only its SHA-256 (a fast hash is
 * enough for secrets of this entropy, and it lets a request find its key with one indexed lookup).
 */
export const SCOPES = ["upscale", "usage", "cdn"] as const;
export const scopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof scopeSchema>;

const SECRET_PREFIX = "hvar_sk_";
const WEBHOOK_SECRET_PREFIX = "whsec_";

export const keySettingsSchema = z
  .object({
    owner: z.string().min(1).max(200),
    scopes: z.array(scopeSchema).min(1).default(["upscale", "usage"]),
    monthlyQuotaMp: z.number().positive().max(1e9),
    rateLimitPerMin: z.number().int().positive().max(100_000),
    cdnOrigins: z.array(z.url({ protocol: /^https?$/ })).max(100).default([]),
  })
  .openapi("KeySettings");
export type KeySettings = z.infer<typeof keySettingsSchema>;

export const apiKeySchema = keySettingsSchema
  .extend({
    id: z.string(),
    createdAt: z.iso.datetime(),
    revokedAt: z.iso.datetime().nullable(),
  })
  .openapi("ApiKey");
export type ApiKey = z.infer<typeof apiKeySchema>;

const keyRowSchema = z.object({
  id: z.string(),
  owner: z.string(),
  scopes: z.string(),
  monthly_quota_mp: z.number(),
  rate_limit_per_min: z.number(),
  cdn_origins: z.string(),
  created_at: z.number(),
  revoked_at: z.number().nullable(),
});

const KEY_COLUMNS = "id, owner, scopes, monthly_quota_mp, rate_limit_per_min, cdn_origins, created_at, revoked_at";

function fromRow(row: unknown): ApiKey {
  const r = keyRowSchema.parse(row);
  return apiKeySchema.parse({
    id: r.id,
    owner: r.owner,
    scopes: JSON.parse(r.scopes),
    monthlyQuotaMp: r.monthly_quota_mp,
    rateLimitPerMin: r.rate_limit_per_min,
    cdnOrigins: JSON.parse(r.cdn_origins),
    createdAt: new Date(r.created_at).toISOString(),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
  });
}

function newSecret(): string {
  return SECRET_PREFIX + randomToken(32);
}

/** Standard Webhooks secrets are "whsec_" + base64 of the key bytes. */
function newWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

export interface IssuedKey {
  key: ApiKey;
  secret: string;
  webhookSecret: string;
}

export async function createKey(db: D1Database, settings: KeySettings): Promise<IssuedKey> {
  const id = randomId("key");
  const secret = newSecret();
  const webhookSecret = newWebhookSecret();
  const row = await db
    .prepare(
      `INSERT INTO api_keys (id, owner, secret_hash, scopes, monthly_quota_mp, rate_limit_per_min, cdn_origins, created_at, webhook_secret)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${KEY_COLUMNS}`,
    )
    .bind(
      id,
      settings.owner,
      await sha256Hex(secret),
      JSON.stringify(settings.scopes),
      settings.monthlyQuotaMp,
      settings.rateLimitPerMin,
      JSON.stringify(settings.cdnOrigins),
      Date.now(),
      webhookSecret,
    )
    .first();
  return { key: fromRow(row), secret, webhookSecret };
}

export async function listKeys(db: D1Database, owner?: string): Promise<ApiKey[]> {
  const statement = owner
    ? db.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE owner = ? ORDER BY created_at, id`).bind(owner)
    : db.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`);
  const { results } = await statement.all();
  return results.map(fromRow);
}

export async function getKey(db: D1Database, id: string): Promise<ApiKey | null> {
  const row = await db.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`).bind(id).first();
  return row ? fromRow(row) : null;
}

/** Replaces both secrets at once: the old ones stop working with the next request or delivery. */
export async function rotateKey(db: D1Database, id: string): Promise<IssuedKey | null> {
  const secret = newSecret();
  const webhookSecret = newWebhookSecret();
  const row = await db
    .prepare(`UPDATE api_keys SET secret_hash = ?, webhook_secret = ? WHERE id = ? AND revoked_at IS NULL RETURNING ${KEY_COLUMNS}`)
    .bind(await sha256Hex(secret), webhookSecret, id)
    .first();
  return row ? { key: fromRow(row), secret, webhookSecret } : null;
}

export async function webhookSecretOf(db: D1Database, id: string): Promise<string | null> {
  return (await db.prepare("SELECT webhook_secret FROM api_keys WHERE id = ?").bind(id).first<string>("webhook_secret")) ?? null;
}

/** Revocation is read by every authenticated request (no cache), so it takes effect at once. */
export async function revokeKey(db: D1Database, id: string): Promise<ApiKey | null> {
  const row = await db
    .prepare(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING ${KEY_COLUMNS}`)
    .bind(Date.now(), id)
    .first();
  return row ? fromRow(row) : null;
}

export async function findKeyBySecret(db: D1Database, secret: string): Promise<ApiKey | null> {
  if (!secret.startsWith(SECRET_PREFIX)) return null;
  const row = await db
    .prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?`)
    .bind(await sha256Hex(secret))
    .first();
  return row ? fromRow(row) : null;
}
