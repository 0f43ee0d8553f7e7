import { OUTPUT_FORMATS, type OutputFormat, SCALES, type Scale } from "./vocabulary.ts";

/**
 * Where a job's objects live in the storage the worker and the runners share (R2, or the runner's
 * own storage locally). A runner writes the outputs and then the job's record; the worker reads both.
 */

/** Job ids as runners accept them: the worker's are `j_` and 20 base32 letters, the CLI and bench use others. */
export const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Every output of one job, and only its outputs, lie under `results/<job>/` (what deleting a job's results lists). */
export const resultPrefix = (jobId: string) => `results/${jobId}/`;

/** One output: `results/<job>/x<scale>.<format>`, e.g. `results/j_.../x4.jpeg`. */
export const resultKey = (jobId: string, scale: Scale, format: OutputFormat) => `${resultPrefix(jobId)}x${scale}.${format}`;

const RESULT_KEY = new RegExp(`^results/(${JOB_ID.source.slice(1, -1)})/x(${SCALES.join("|")})\\.(${OUTPUT_FORMATS.join("|")})$`);

/** The parts of a result key, or null for anything that is not one. */
export function parseResultKey(key: string): { jobId: string; scale: Scale; format: OutputFormat } | null {
  const match = RESULT_KEY.exec(key);
  if (!match) return null;
  const [, jobId, scale, format] = match as unknown as [string, string, `${Scale}`, OutputFormat];
  return { jobId, scale: Number(scale) as Scale, format };
}

/** A job's input while the job runs: queue runners read it, the runner pool resends it after a restart. */
export const inputKey = (jobId: string) => `inputs/${jobId}`;

/** A finished job's record (a RunnerJob), written by the runner after its outputs. */
export const jobRecordKey = (jobId: string) => `jobs/${jobId}.json`;
