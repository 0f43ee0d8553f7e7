import type { ApiKey } from "../auth/keys";
import type { Bindings } from "../env";
import { IsolateCache } from "../storage/isolate-cache";
import { meterOf } from "./client";
import type { RateDecision } from "./key-meter";

/**
 * A key's rate limit without a Durable Object call per request. When its KeyMeter admits a request,
 * the isolate takes up to one second of the key's refill at once (LEASE_MS; a single token for limits
 * under 120 per minute, so those ask the meter every time) and spends it on the key's next requests
 * for up to a second. One lease is asked for at a time per key; requests that arrive meanwhile wait
 * for it. The tokens come out of the one bucket, so the limit holds across isolates; an isolate that
 * stops early leaves its unspent tokens unused, at most one second of refill per isolate. The decision
 * of a leased token reports the bucket as the meter left it, plus the refill since and the tokens
 * still leased, in the terms of the RateLimit-* headers.
 */
const LEASE_MS = 1_000;

interface Lease {
  limit: number;
  /** Tokens taken from the meter and not yet spent. */
  tokens: number;
  /** The meter's bucket as the lease left it, and when. */
  bucket: number;
  at: number;
}

const leases = new IsolateCache<string, Lease>({ ttlMs: LEASE_MS, maxEntries: 10_000 });
const leasing = new Map<string, Promise<unknown>>();

const leaseSize = (limitPerMin: number) => Math.max(1, Math.floor((limitPerMin * LEASE_MS) / 60_000));

function decisionOf(lease: Lease, now: number): RateDecision {
  const refillPerMs = lease.limit / 60_000;
  const tokens = Math.min(lease.limit, lease.bucket + Math.max(0, now - lease.at) * refillPerMs + lease.tokens);
  return { ok: true, limit: lease.limit, remaining: Math.floor(tokens), resetS: Math.ceil((lease.limit - tokens) / refillPerMs / 1000), retryAfterS: 0 };
}

function spendLeased(key: Pick<ApiKey, "id" | "rateLimitPerMin">, now: number): RateDecision | null {
  const lease = leases.get(key.id);
  if (!lease || lease.limit !== key.rateLimitPerMin || lease.tokens < 1) return null;
  lease.tokens -= 1;
  return decisionOf(lease, now);
}

/** Takes one token of the key's bucket: from this isolate's lease when it holds one, else from its KeyMeter (one call). */
export async function takeToken(env: Bindings, key: Pick<ApiKey, "id" | "rateLimitPerMin">, now = Date.now()): Promise<RateDecision> {
  const leased = spendLeased(key, now);
  if (leased) return leased;
  const pending = leasing.get(key.id);
  if (pending) {
    await pending.catch(() => undefined);
    const spent = spendLeased(key, now);
    if (spent) return spent;
  }
  const limit = key.rateLimitPerMin;
  const size = pending ? 1 : leaseSize(limit);
  const asked = meterOf(env, key.id).take(limit, now, size);
  if (size > 1) leasing.set(key.id, asked);
  try {
    const { granted, ...decision } = await asked;
    if (granted <= 1) return decision;
    const lease = { limit, tokens: granted - 1, bucket: decision.remaining, at: now };
    leases.set(key.id, lease);
    return decisionOf(lease, now);
  } finally {
    if (leasing.get(key.id) === asked) leasing.delete(key.id);
  }
}
