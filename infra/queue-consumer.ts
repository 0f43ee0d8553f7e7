/**
 * The job queue's HTTP pull consumer (the runners, gpu-runner/src/queue) and its dead-letter queue,
 * set up on Cloudflare for the queue wrangler.toml's JOBS_QUEUE binding sends to:
 *
 *   npm run queue:consumer -- --print             the wrangler commands, for the default environment
 *   npm run queue:consumer -- [--env production]  runs them
 *
 * wrangler.toml declares only Worker (push) consumers (wrangler refuses `type = "http_pull"` there),
 * and a queue has consumers of one kind, so the pull consumer is made with `wrangler queues consumer
 * http add`. Each runner sets its own lease and retry delay on every pull and retry (HVAR_QUEUE_*);
 * the consumer's defaults below are the runners' defaults, for tools that pull without saying.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { RunnerConfigSchema } from "../gpu-runner/src/config";

/**
 * Deliveries a job may fail before it goes to the dead-letter queue: a runner that died with it (its
 * lease ran out), a runner that gave it back (busy with other work, storage unreachable), or a
 * message no runner can read. A job refused for its image is not retried: it fails at once.
 */
export const MAX_RETRIES = 5;

export const deadLetterQueueOf = (queue: string) => `${queue}-dlq`;

/** The queue the worker's JOBS_QUEUE binding sends to, in one wrangler environment (the top level when `env` is undefined). */
export function jobQueueOf(configPath: string, env?: string): string {
  const config = unstable_readConfig({ config: configPath, ...(env ? { env } : {}) });
  const queue = config.queues.producers?.find((p: { binding: string; queue: string }) => p.binding === "JOBS_QUEUE")?.queue;
  if (!queue) throw new Error(`${configPath}${env ? ` (env ${env})` : ""} binds no JOBS_QUEUE`);
  return queue;
}

/** `wrangler` arguments: the dead-letter queue, then the pull consumer of `queue` that sends to it. */
export function consumerCommands(queue: string, env?: string): string[][] {
  const runner = RunnerConfigSchema.parse({});
  const dlq = deadLetterQueueOf(queue);
  const environment = env ? ["--env", env] : [];
  return [
    ["queues", "create", dlq, ...environment],
    [
      "queues",
      "consumer",
      "http",
      "add",
      queue,
      "--message-retries",
      String(MAX_RETRIES),
      "--dead-letter-queue",
      dlq,
      "--visibility-timeout-secs",
      String(runner.HVAR_QUEUE_VISIBILITY_TIMEOUT_MS / 1000),
      "--retry-delay-secs",
      String(runner.HVAR_QUEUE_RETRY_DELAY_S),
      ...environment,
    ],
  ];
}

function main(): void {
  const { values } = parseArgs({ options: { env: { type: "string" }, print: { type: "boolean", default: false } } });
  const commands = consumerCommands(jobQueueOf(fileURLToPath(new URL("../wrangler.toml", import.meta.url)), values.env), values.env);
  if (values.print) {
    for (const args of commands) console.log(["wrangler", ...args].join(" "));
    return;
  }
  const [createDlq, addConsumer] = commands as [string[], string[]];
  try {
    execFileSync("wrangler", createDlq, { stdio: "inherit" });
  } catch {
    console.warn("(creating the dead-letter queue failed: if it exists already, that is fine)");
  }
  execFileSync("wrangler", addConsumer, { stdio: "inherit" });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
