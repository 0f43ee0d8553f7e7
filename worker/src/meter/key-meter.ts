import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";

/**
 * One instance per API key. Reservations serialize here, so a key's quota holds under any
 * concurrency: quota is reserved before a job is dispatched, then settled (billed) or refunded.
 * Each reservation id is idempotent, so a retried request never reserves twice.
 */
export type ReserveResult = { ok: true; remainingMp: number } | { ok: false; remainingMp: number };

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
  }

  reserve(id: string, mp: number, quotaMp: number, now = Date.now()): ReserveResult {
    const period = periodOf(new Date(now));
    const existing = this.ctx.storage.sql.exec("SELECT 1 FROM reservations WHERE id = ?", id).toArray();
    const { settledMp, reservedMp } = this.usage(now);
    const remainingMp = quotaMp - settledMp - reservedMp;
    if (existing.length > 0) return { ok: true, remainingMp };
    if (mp > remainingMp) return { ok: false, remainingMp };
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
