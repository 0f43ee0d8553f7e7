import { DomainError } from "@hvar/contract";
import type { ApiKey } from "../auth/keys";
import type { Bindings } from "../env";
import { meterOf } from "../meter/client";

/**
 * A key's monthly quota, held in its KeyMeter: reserved before a job is dispatched, then settled
 * (billed) when the job succeeds or refunded when it fails. Each step is idempotent per job id, so a
 * retried request or a second poller never reserves or bills twice.
 */
function secondsToNextMonth(now = new Date()): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return Math.ceil((next - now.getTime()) / 1000);
}

/** Reserves `inputMp` for the job, or throws 429 `quota_exceeded` (Retry-After: the next month). */
export async function reserveQuota(env: Bindings, key: Pick<ApiKey, "id" | "monthlyQuotaMp">, jobId: string, inputMp: number): Promise<void> {
  const reservation = await meterOf(env, key.id).reserve(jobId, inputMp, key.monthlyQuotaMp);
  if (!reservation.ok) {
    throw new DomainError({
      kind: "limit_reached",
      code: "quota_exceeded",
      title: "The monthly quota of this key is used up",
      detail: `This image needs ${inputMp} MP; ${Math.max(0, reservation.remainingMp)} MP remain this month.`,
      retryAfterS: secondsToNextMonth(),
    });
  }
}

/** Bills the job's reservation, at the input's measured size. */
export async function settleQuota(env: Bindings, keyId: string, jobId: string, inputMp: number): Promise<void> {
  await meterOf(env, keyId).settle(jobId, inputMp);
}

/** Gives the job's reservation back (the job failed, or was never created). */
export async function refundQuota(env: Bindings, keyId: string, jobId: string): Promise<void> {
  await meterOf(env, keyId).refund(jobId);
}
