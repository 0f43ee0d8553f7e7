import { z } from "@hono/zod-openapi";
import { randomId, randomToken, sha256Hex, toBase64 } from "../security/crypto";
import { IsolateCache } from "../storage/isolate-cache";

/**
 * API keys. The secret is 32 random bytes shown once; D1 keeps only its SHA-256 (a fast hash is
 * enough for secrets of this entropy, and it lets a request find its key with one indexed lookup).
 */
export const SCOPES = ["upscale", "usage", "cdn"] as const;
export const scopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof scopeSchema>;

const SECRET_PREFIX = "hvar_sk_";
const WEBHOOK_SECRET_PREFIX = "whsec_";
const CDN_SECRET_PREFIX = "hvar_cdn_";

export const keySettingsSchema = z
  .object({
    owner: z.string().min(1).max(200),
    scopes: z.array(scopeSchema).min(1).default(["upscale", "usage"]),
    monthlyQuotaMp: z.number().positive().max(1e9),
    rateLimitPerMin: z.number().int().positive().max(100_000),
    cdnOrigins: z
      .array(z.url({ protocol: /^https?$/ }))
      .max(100)
      .default([])
      .openapi({ description: "Where CDN URLs may read sources from (origins, or URL prefixes); the first is the default for path sources" }),
    cdnAllowUnsigned: z
      .boolean()
      .default(false)
      .openapi({ description: "Accept unsigned CDN URLs (signature `unsigned`) for the listed origins" }),
  })
  .openapi("KeySettings", {
    example: { owner: "me", monthlyQuotaMp: 100, rateLimitPerMin: 60, scopes: ["upscale", "usage", "cdn"], cdnOrigins: ["https://photos.example.com"] },
  });
export type KeySettings = z.infer<typeof keySettingsSchema>;

export const apiKeySchema = keySettingsSchema
  .extend({
    id: z.string(),
    createdAt: z.iso.datetime(),
    revokedAt: z.iso.datetime().nullable(),
  })
  .openapi("ApiKey", {
    example: {
      id: "key_abcdefghijklmnopqrst",
      owner: "me",
      scopes: ["upscale", "usage", "cdn"],
      monthlyQuotaMp: 100,
      rateLimitPerMin: 60,
      cdnOrigins: ["https://photos.example.com"],
      cdnAllowUnsigned: false,
      createdAt: "2026-11-01T09:30:00.000Z",
      revokedAt: null,
    },
  });
export type ApiKey = z.infer<typeof apiKeySchema>;

const keyRowSchema = z.object({
  id: z.string(),
  owner: z.string(),
  scopes: z.string(),
  monthly_quota_mp: z.number(),
  rate_limit_per_min: z.number(),
  cdn_origins: z.string(),
  cdn_allow_unsigned: z.number(),
  created_at: z.number(),
  revoked_at: z.number().nullable(),
});

const KEY_COLUMNS = "id, owner, scopes, monthly_quota_mp, rate_limit_per_min, cdn_origins, cdn_allow_unsigned, created_at, revoked_at";

function fromRow(row: unknown): ApiKey {
  const r = keyRowSchema.parse(row);
  return apiKeySchema.parse({
    id: r.id,
    owner: r.owner,
    scopes: JSON.parse(r.scopes),
    monthlyQuotaMp: r.monthly_quota_mp,
    rateLimitPerMin: r.rate_limit_per_min,
    cdnOrigins: JSON.parse(r.cdn_origins),
    cdnAllowUnsigned: r.cdn_allow_unsigned === 1,
    createdAt: new Date(r.created_at).toISOString(),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
  });
}

function newSecret(): string {
  return SECRET_PREFIX + randomToken(32);
}

/** Signs CDN URLs (HMAC-SHA256 over the UTF-8 bytes of the whole string). */
function newCdnSecret(): string {
  return CDN_SECRET_PREFIX + randomToken(32);
}

/** Standard Webhooks secrets are "whsec_" + base64 of the key bytes. */
function newWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

export interface IssuedKey {
  key: ApiKey;
  secret: string;
  webhookSecret: string;
  cdnSecret: string;
}

export async function createKey(db: D1Database, settings: KeySettings): Promise<IssuedKey> {
  const id = randomId("key");
  const secret = newSecret();
  const webhookSecret = newWebhookSecret();
  const cdnSecret = newCdnSecret();
  const row = await db
    .prepare(
      `INSERT INTO api_keys (id, owner, secret_hash, scopes, monthly_quota_mp, rate_limit_per_min, cdn_origins, cdn_allow_unsigned, created_at,
         webhook_secret, cdn_secret)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${KEY_COLUMNS}`,
    )
    .bind(
      id,
      settings.owner,
      await sha256Hex(secret),
      JSON.stringify(settings.scopes),
      settings.monthlyQuotaMp,
      settings.rateLimitPerMin,
      JSON.stringify(settings.cdnOrigins),
      settings.cdnAllowUnsigned ? 1 : 0,
      Date.now(),
      webhookSecret,
      cdnSecret,
    )
    .first();
  return { key: fromRow(row), secret, webhookSecret, cdnSecret };
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

/**
 * How long an isolate authenticates requests with a key record it read, without reading D1 again:
 * the bound within which a revocation or a rotation made elsewhere takes effect here. The isolate
 * that revokes or rotates a key forgets it at once.
 */
export const KEY_CACHE_TTL_MS = 5_000;
const keysBySecretHash = new IsolateCache<string, ApiKey>({ ttlMs: KEY_CACHE_TTL_MS, maxEntries: 10_000 });

function forgetKey(id: string): void {
  keysBySecretHash.deleteWhere((key) => key.id === id);
}

/**
 * Replaces all three secrets at once: the old ones stop working with the next delivery or CDN URL, and
 * the old API secret with the next request to this isolate and within KEY_CACHE_TTL_MS to every other
 * (a rotation is for a leak, and a leaked key may have leaked its neighbours).
 */
export async function rotateKey(db: D1Database, id: string): Promise<IssuedKey | null> {
  const secret = newSecret();
  const webhookSecret = newWebhookSecret();
  const cdnSecret = newCdnSecret();
  const row = await db
    .prepare(
      `UPDATE api_keys SET secret_hash = ?, webhook_secret = ?, cdn_secret = ? WHERE id = ? AND revoked_at IS NULL RETURNING ${KEY_COLUMNS}`,
    )
    .bind(await sha256Hex(secret), webhookSecret, cdnSecret, id)
    .first();
  forgetKey(id);
  return row ? { key: fromRow(row), secret, webhookSecret, cdnSecret } : null;
}

export async function webhookSecretOf(db: D1Database, id: string): Promise<string | null> {
  return (await db.prepare("SELECT webhook_secret FROM api_keys WHERE id = ?").bind(id).first<string>("webhook_secret")) ?? null;
}

/** A key with its CDN signing secret (null for keys made before CDN URLs, until rotated). */
export async function findCdnKey(db: D1Database, id: string): Promise<{ key: ApiKey; cdnSecret: string | null } | null> {
  const row = await db.prepare(`SELECT ${KEY_COLUMNS}, cdn_secret FROM api_keys WHERE id = ?`).bind(id).first<{ cdn_secret: string | null }>();
  return row ? { key: fromRow(row), cdnSecret: row.cdn_secret } : null;
}

/** Revocation takes effect at once in this isolate, and within KEY_CACHE_TTL_MS in every other. */
export async function revokeKey(db: D1Database, id: string): Promise<ApiKey | null> {
  const row = await db
    .prepare(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING ${KEY_COLUMNS}`)
    .bind(Date.now(), id)
    .first();
  forgetKey(id);
  return row ? fromRow(row) : null;
}

/** The key of an API secret, revoked or not; at most one D1 read per key and KEY_CACHE_TTL_MS in an isolate. */
export async function findKeyBySecret(db: D1Database, secret: string): Promise<ApiKey | null> {
  if (!secret.startsWith(SECRET_PREFIX)) return null;
  const secretHash = await sha256Hex(secret);
  const remembered = keysBySecretHash.get(secretHash);
  if (remembered) return remembered;
  const row = await db.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?`).bind(secretHash).first();
  if (!row) return null;
  const key = fromRow(row);
  keysBySecretHash.set(secretHash, key);
  return key;
}
