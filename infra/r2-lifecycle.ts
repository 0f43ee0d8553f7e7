/**
 * The results bucket's R2 lifecycle rules, made from the worker's own retention settings
 * (wrangler.toml's vars, per environment), so that the bucket and the worker never disagree:
 *
 *   npm run r2:lifecycle -- --print             the rules as JSON, for the default environment
 *   npm run r2:lifecycle -- [--env production]  applies them (wrangler r2 bucket lifecycle set)
 *
 * The worker's cron deletes expired results on time, job by job (worker/src/jobs/retention.ts);
 * these rules are the backstop for objects no job row names any more (a row deleted by hand, an
 * input left by a job that never got a row) and for buckets the worker no longer sweeps. R2 removes
 * an object within about a day of its expiry, and an object is uploaded after its job is created,
 * so a rule never deletes a result before the worker's own expiry, which is what signed URLs stop at.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { z } from "zod";

const DAY_S = 86_400;
/** R2's default rule on every new bucket, kept because `lifecycle set` replaces all rules. */
const MULTIPART_ABORT_DAYS = 7;

/** The worker's settings these rules follow, with the worker's defaults (worker/src/config.ts). */
const settingsSchema = z.object({
  RESULT_TTL_DAYS: z.coerce.number().int().positive().default(30),
  JOB_TIMEOUT_S: z.coerce.number().int().positive().default(600),
});

const age = (days: number) => ({ condition: { type: "Age" as const, maxAge: days * DAY_S } });
const expire = (id: string, prefix: string, days: number) => ({ id, enabled: true, conditions: { prefix }, deleteObjectsTransition: age(days) });

/**
 * The rules, in the shape `wrangler r2 bucket lifecycle set --file` takes. Prefixes are those of
 * packages/contract's keys (keys.ts): results/<job>/, jobs/<job>.json, inputs/<job>.
 */
export function lifecycleRules(vars: Record<string, unknown>) {
  const settings = settingsSchema.parse(vars);
  return {
    rules: [
      // A cache hit shares the files of a job whose results have not expired, and keeps them for its
      // own RESULT_TTL_DAYS (worker/src/jobs/result-cache.ts): files live at most twice that.
      expire("hvar-results", "results/", 2 * settings.RESULT_TTL_DAYS),
      expire("hvar-job-records", "jobs/", settings.RESULT_TTL_DAYS),
      // An input is deleted when its job ends; one still there a day past the job's deadline was left behind.
      expire("hvar-inputs", "inputs/", Math.floor(settings.JOB_TIMEOUT_S / DAY_S) + 1),
      { id: "Default Multipart Abort Rule", enabled: true, conditions: { prefix: "" }, abortMultipartUploadsTransition: age(MULTIPART_ABORT_DAYS) },
    ],
  };
}

/** The results bucket and the vars of one wrangler environment (the top level when `env` is undefined). */
export function deploymentOf(configPath: string, env?: string): { bucket: string; vars: Record<string, unknown> } {
  const config = unstable_readConfig({ config: configPath, ...(env ? { env } : {}) });
  const bucket = config.r2_buckets.find((b: { binding: string; bucket_name?: string }) => b.binding === "RESULTS")?.bucket_name;
  if (!bucket) throw new Error(`${configPath}${env ? ` (env ${env})` : ""} binds no RESULTS bucket`);
  return { bucket, vars: config.vars };
}

function main(): void {
  const { values } = parseArgs({ options: { env: { type: "string" }, print: { type: "boolean", default: false }, yes: { type: "boolean", default: false } } });
  const configPath = fileURLToPath(new URL("../wrangler.toml", import.meta.url));
  const { bucket, vars } = deploymentOf(configPath, values.env);
  const rules = JSON.stringify(lifecycleRules(vars), null, 2);
  if (values.print) {
    console.log(rules);
    return;
  }
  const file = join(mkdtempSync(join(tmpdir(), "hvar-r2-lifecycle-")), "rules.json");
  writeFileSync(file, rules);
  const args = ["r2", "bucket", "lifecycle", "set", bucket, "--file", file, ...(values.env ? ["--env", values.env] : []), ...(values.yes ? ["--force"] : [])];
  execFileSync("wrangler", args, { stdio: "inherit" });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
