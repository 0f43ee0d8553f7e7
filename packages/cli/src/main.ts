import { createRequire } from "node:module";
import { HvarClient, HvarError, UpscaleTimeoutError, type Upscale } from "../../client/src/index.js";
import { type Parsed, UsageError, connectionOf, parseCommand } from "./args.js";
import { HELP, helpOf } from "./help.js";
import type { TextOut } from "./progress.js";
import { renderJob, renderList, renderModel, renderUsage } from "./render.js";
import { OutputError, checkUpscaleInputs, messageOf, renderUpscaled, upscaleOne } from "./upscale.js";

export interface CliIo {
  stdout: TextOut;
  /** Progress and errors; a terminal gets a progress bar, anything else plain lines. */
  stderr: TextOut;
  env: Readonly<Record<string, string | undefined>>;
  /** Another fetch (tests); the global one by default. */
  fetch?: typeof fetch;
  /** Ctrl-C: stop waiting (the job goes on; its id is printed). */
  signal?: AbortSignal;
}

/** The exit codes, as `hvar --help` documents them. */
export const EXIT = { ok: 0, problem: 1, usage: 2, noResult: 3 } as const;

/** What went wrong, in the shape of the API's problems, whoever caused it. */
interface Failure {
  exitCode: number;
  code: string;
  title: string;
  detail?: string;
  jobId?: string;
  requestId?: string;
}

export const version = (): string => (createRequire(import.meta.url)("@hvar/cli/package.json") as { version: string }).version;

/** Runs one command line; resolves with the exit code (it never throws for a failure it can name). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Parsed;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`hvar: ${error.message}\n\n${HELP}`);
    return EXIT.usage;
  }
  if (command.name === "version") {
    io.stdout.write(`hvar ${version()}\n`);
    return EXIT.ok;
  }
  if (command.name === "help") {
    const help = helpOf(command.topic);
    if (help === undefined) {
      io.stderr.write(`hvar: no command '${command.topic}'\n\n${HELP}`);
      return EXIT.usage;
    }
    io.stdout.write(help);
    return command.topic === undefined && argv.length === 0 ? EXIT.usage : EXIT.ok;
  }

  const { json } = command.globals;
  const fail = (failure: Failure, input?: string): number => {
    const { exitCode, ...error } = failure;
    if (json) io.stderr.write(`${JSON.stringify({ ...(input === undefined ? {} : { input }), error })}\n`);
    else io.stderr.write(`hvar: ${input === undefined ? "" : `${input}: `}${describe(failure)}\n`);
    return exitCode;
  };
  const print = (value: unknown, text: string) => io.stdout.write(json ? `${JSON.stringify(value)}\n` : text);

  try {
    const hvar = new HvarClient({ ...connectionOf(command.globals, io.env), ...(io.fetch ? { fetch: io.fetch } : {}) });
    const call = io.signal ? { signal: io.signal } : {};
    switch (command.name) {
      case "upscale": {
        await checkUpscaleInputs(command);
        let exitCode: number = EXIT.ok;
        for (const input of command.inputs) {
          let job: Upscale | undefined;
          try {
            const done = await upscaleOne(hvar, input, command, {
              progress: io.stderr,
              fetch: io.fetch ?? globalThis.fetch.bind(globalThis),
              ...call,
              onJob: (j) => (job = j),
            });
            print(done, renderUpscaled(done));
          } catch (error) {
            // Every input is tried; the exit code is the first failure's.
            const failure = failureOf(error, job);
            if (exitCode === EXIT.ok) exitCode = failure.exitCode;
            fail(failure, input);
            if (io.signal?.aborted) break;
          }
        }
        return exitCode;
      }
      case "get": {
        const job = await hvar.get(command.id, call);
        print(job, renderJob(job));
        return EXIT.ok;
      }
      case "list": {
        const page = await hvar.list({ status: command.status, limit: command.limit, cursor: command.cursor }, call);
        print(page, renderList(page));
        return EXIT.ok;
      }
      case "cancel": {
        const job = await hvar.cancel(command.id, call);
        print(job, `${job.id} ${job.status}\n`);
        return EXIT.ok;
      }
      case "delete": {
        await hvar.delete(command.id, call);
        print({ id: command.id, deleted: true }, `${command.id} deleted\n`);
        return EXIT.ok;
      }
      case "usage": {
        const usage = await hvar.usage({ granularity: command.granularity, from: command.from, to: command.to }, call);
        print(usage, renderUsage(usage));
        return EXIT.ok;
      }
      case "model": {
        const model = await hvar.model(call);
        print(model, renderModel(model));
        return EXIT.ok;
      }
    }
  } catch (error) {
    return fail(failureOf(error));
  }
}

/** Any error as a Failure with its exit code; `job` is the job it happened to, when known. */
export function failureOf(error: unknown, job?: Upscale): Failure {
  const jobId = job ? { jobId: job.id } : {};
  if (error instanceof UsageError) return { exitCode: EXIT.usage, code: "usage", title: error.message };
  if (error instanceof HvarError) {
    const problemJobId = typeof error.problem.jobId === "string" ? { jobId: error.problem.jobId } : jobId;
    return {
      exitCode: EXIT.problem,
      code: error.code,
      title: error.title,
      ...(error.detail ? { detail: error.detail } : {}),
      ...problemJobId,
      ...(error.requestId ? { requestId: error.requestId } : {}),
    };
  }
  if (error instanceof UpscaleTimeoutError) {
    return { exitCode: EXIT.noResult, code: "timeout", title: `still ${error.job.status} at --timeout; it goes on (hvar get ${error.job.id})`, jobId: error.job.id };
  }
  if (error instanceof OutputError) return { exitCode: EXIT.noResult, code: error.code, title: error.message, jobId: error.jobId };
  if (error instanceof Error && error.name === "AbortError") {
    return { exitCode: EXIT.noResult, code: "interrupted", title: job ? `stopped waiting; the job goes on (hvar cancel ${job.id} stops it)` : "stopped", ...jobId };
  }
  return { exitCode: EXIT.noResult, code: "network_error", title: messageOf(error), ...jobId };
}

function describe(failure: Failure): string {
  const about = [failure.jobId && `job ${failure.jobId}`, failure.requestId && `request ${failure.requestId}`].filter(Boolean).join(", ");
  const code = failure.code === "usage" ? "" : `${failure.code}: `;
  return `${code}${failure.title}${failure.detail ? `: ${failure.detail}` : ""}${about ? ` (${about})` : ""}`;
}
