import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";

/**
 * One instance per API key. Reservations serialize here, so a key's quota holds under any
 * concurrency: quota is reserved before a job is dispatched, then settled (billed) or refunded.
 * Each reservation id is idempotent, so a retried request never reserves twice.
 */
export type ReserveResult = { ok: true; remainingMp: number } | { ok: false; remainingMp: number };

/** A token-bucket decision, in the terms of the RateLimit-* headers. */
export interface RateDecision {
  ok: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetS: number;
  /** Seconds until one token is available (0 when `ok`). */
  retryAfterS: number;
}

/** A decision that may hand out more than the one token a request takes (meter/rate-lease.ts). */
export interface RateGrant extends RateDecision {
  /** Tokens taken: between 1 and the count asked for when `ok`, else 0. */
  granted: number;
}

export interface Usage {
  period: string;
  settledMp: number;
  reservedMp: number;
}

/** Quota periods are calendar months in UTC, e.g. "2026-11". */
export function periodOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

export class KeyMeter extends DurableObject<Bindings> {
  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS reservations (
      id TEXT PRIMARY KEY,
      period TEXT NOT NULL,
      mp REAL NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('reserved', 'settled'))
    )`);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS bucket (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      tokens REAL NOT NULL,
      updated_ms INTEGER NOT NULL
    )`);
  }

  /**
   * Token bucket of `limitPerMin` tokens refilled continuously; one request takes one token, and an
   * isolate may take up to `count` at once to spend them itself (meter/rate-lease.ts). The limit
   * comes with each call (from the key's record), so a changed limit applies at once.
   */
  take(limitPerMin: number, now = Date.now(), count = 1): RateGrant {
    const refillPerMs = limitPerMin / 60_000;
    const row = this.ctx.storage.sql.exec<{ tokens: number; updated_ms: number }>("SELECT tokens, updated_ms FROM bucket").toArray()[0];
    const elapsed = row ? Math.max(0, now - row.updated_ms) : 0;
    let tokens = row ? Math.min(limitPerMin, row.tokens + elapsed * refillPerMs) : limitPerMin;
    const ok = tokens >= 1;
    const granted = ok ? Math.max(1, Math.min(Math.floor(count), Math.floor(tokens))) : 0;
    tokens -= granted;
    this.ctx.storage.sql.exec(
      "INSERT INTO bucket (id, tokens, updated_ms) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms",
      tokens,
      now,
    );
    return {
      ok,
      granted,
      limit: limitPerMin,
      remaining: Math.floor(tokens),
      resetS: Math.ceil((limitPerMin - tokens) / refillPerMs / 1000),
      retryAfterS: ok ? 0 : Math.max(1, Math.ceil((1 - tokens) / refillPerMs / 1000)),
    };
  }

  reserve(id: string, mp: number, quotaMp: number, now = Date.now()): ReserveResult {
    const period = periodOf(new Date(now));
    const existing = this.ctx.storage.sql.exec("SELECT 1 FROM reservations WHERE id = ?", id).toArray();
    const { settledMp, reservedMp } = this.usage(now);
    const remainingMp = quotaMp - settledMp - reservedMp;
    if (existing.length > 0) return { ok: true, remainingMp };
    // Megapixels are fractional; a sum of them may drift by an ulp, which must not refuse a job that fits.
    if (mp > remainingMp + 1e-9) return { ok: false, remainingMp };
    this.ctx.storage.sql.exec(
      "INSERT INTO reservations (id, period, mp, state) VALUES (?, ?, ?, 'reserved')",
      id,
      period,
      mp,
    );
    return { ok: true, remainingMp: remainingMp - mp };
  }

  /** Bills a reservation; `mp` may correct the amount (e.g. the measured input size). */
  settle(id: string, mp?: number): boolean {
    const cursor = this.ctx.storage.sql.exec(
      "UPDATE reservations SET state = 'settled', mp = COALESCE(?, mp) WHERE id = ? AND state = 'reserved'",
      mp ?? null,
      id,
    );
    return cursor.rowsWritten > 0;
  }

  /** Gives reserved quota back (job failed or was refused). Settled usage is never refunded here. */
  refund(id: string): boolean {
    const cursor = this.ctx.storage.sql.exec("DELETE FROM reservations WHERE id = ? AND state = 'reserved'", id);
    return cursor.rowsWritten > 0;
  }

  usage(now = Date.now()): Usage {
    const period = periodOf(new Date(now));
    const row = this.ctx.storage.sql
      .exec<{ settled: number; reserved: number }>(
        `SELECT COALESCE(SUM(CASE WHEN state = 'settled' THEN mp END), 0) AS settled,
                COALESCE(SUM(CASE WHEN state = 'reserved' THEN mp END), 0) AS reserved
         FROM reservations WHERE period = ?`,
        period,
      )
      .one();
    return { period, settledMp: row.settled, reservedMp: row.reserved };
  }
}
