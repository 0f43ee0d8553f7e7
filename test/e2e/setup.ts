import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { discoverModels } from "../../gpu-runner/src/model/manifest";
import { ROOT, startStack } from "../../scripts/stack";
import { roundRobinProxy } from "../fixtures/round-robin-proxy";
import { routedOrigin } from "../fixtures/routed-origin";

/**
 * THE MODELS THE E2E RUNNER SERVES: one place to switch. Today the contract test model (a tiny ONNX
 * graph with the real model's inputs and outputs); once the shipped model is in gpu-runner/models,
 * make SHIPPED the default here. `HVAR_MODELS_DIR=... npm test` overrides either for one run.
 * The tests check sizes, formats, states and accounting, never pixel values, so both pass them.
 * (`shipped-model.test.ts` is the exception: its own project, `e2e-shipped`, always serves SHIPPED.)
 */
const CONTRACT_FIXTURE = fileURLToPath(new URL("../gpu-runner/fixtures", import.meta.url));
export const SHIPPED = fileURLToPath(new URL("../../gpu-runner/models", import.meta.url));
export const E2E_MODELS_DIR = process.env.HVAR_MODELS_DIR ?? CONTRACT_FIXTURE;

export interface E2EStack {
  workerUrl: string;
  runnerUrl: string;
  /** The runner's /metrics listener, apart from its API. */
  metricsUrl: string;
  adminSecret: string;
  runnerSecret: string;
  devKey: { id: string; secret: string; webhookSecret: string };
  model: string | null;
  runnerPid: number;
  /** Every runner replica (one, unless the project asks for more): its API, its metrics listener, its first process id. */
  runners: { url: string; metricsUrl: string; pid: number }[];
  /** The load balancer in front of the replicas, the worker's one RUNNER_URLS entry; null without one. */
  balancerUrl: string | null;
  /** A plain-http origin on loopback that the worker may fetch CDN sources from (ALLOW_INSECURE_ORIGINS); a test serves it with `serveOrigin` (helpers.ts). */
  cdnOrigin: string;
  /** The file naming where requests to cdnOrigin go now (test/fixtures/routed-origin.ts). */
  cdnOriginRoute: string;
  /** A plain-http origin on loopback that the worker may post webhooks to (ALLOW_INSECURE_ORIGINS); webhookReceiver() serves it. */
  webhookOrigin: string;
  /** The file naming where requests to webhookOrigin go now. */
  webhookOriginRoute: string;
  dir: string;
  logFile: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: E2EStack;
    /** Why the stack of a project set up with `failure: "report"` did not start (then `stack` is absent). */
    stackError: string | null;
  }
}

export interface StackSetupOptions {
  /**
   * `throw` (default): a stack that does not start, or serves no model, fails the whole vitest run
   * (every test of the project needs it). `report`: the project's tests get the reason as
   * `inject("stackError")` and fail with it, and the other projects still run.
   */
  failure?: "throw" | "report";
  /** More runner environment (`startStack`'s `runnerEnv`). */
  runnerEnv?: Record<string, string>;
  /** Runner processes sharing one store (`startStack`'s `runnerReplicas`). Default 1. */
  runnerReplicas?: number;
  /** Puts a round-robin load balancer on loopback in front of the replicas, as a Kubernetes Service: the worker knows only it. */
  balancer?: boolean;
}

/**
 * The e2e runner's throughput ceiling (HVAR_MAX_TILES_PER_SECOND): the contract model is so fast
 * that a job's duration would depend on the CPU. At this rate the tests' photos (about 100 tiles)
 * take a fifth of a second, and runner-crash.test.ts's 1024x1024 image (1849 tiles) at least 3.7 s,
 * on any machine: long enough to kill the runner in the middle of it.
 */
export const E2E_RUNNER_TILES_PER_SECOND = 500;

/**
 * A vitest `globalSetup` that starts the stack once for the project, serving the models in
 * `modelsDir`, and hands its coordinates to the tests with `inject("stack")`; it stops it and removes
 * its folder at the end (HVAR_E2E_KEEP=1 keeps it). Each e2e project picks its models this way:
 * `setup.ts` (project `e2e`) E2E_MODELS_DIR, `setup.shipped.ts` (project `e2e-shipped`) SHIPPED.
 */
export function stackSetup(modelsDir: string, options: StackSetupOptions = {}) {
  return async function setup(project: TestProject): Promise<() => Promise<void>> {
    const where = shown(modelsDir);
    const fail = async (message: string, cause?: unknown): Promise<() => Promise<void>> => {
      if (options.failure !== "report") throw new Error(message, { cause });
      project.provide("stackError", message);
      return async () => undefined;
    };
    // Nothing to start without a model: say why (e.g. a sha256 mismatch) rather than start a stack that answers no_model.
    const discovery = await discoverModels(modelsDir);
    if (discovery.models.length === 0) {
      const reasons = discovery.rejected.map((r) => `\n  ${shown(r.dir)}: ${r.reason}`).join("");
      return fail(`no usable model in ${where} (<id>/model.onnx with its manifest.json)${reasons || `: it has no <id>/manifest.json`}`);
    }

    const dir = await mkdtemp(join(tmpdir(), "hvar-e2e-"));
    const logFile = join(dir, "stack.log");
    // Listening before the worker starts, which reads ALLOW_INSECURE_ORIGINS once, and until the end.
    const cdnOrigin = await routedOrigin(join(dir, "cdn-origin.route"));
    const webhookOrigin = await routedOrigin(join(dir, "webhook-origin.route"));
    const balancer = options.balancer ? await roundRobinProxy() : undefined;
    const closeProxies = async () => {
      await Promise.all([balancer?.close(), cdnOrigin.close(), webhookOrigin.close()]);
    };
    let stack;
    try {
      stack = await startStack({
        workerPort: 0,
        runnerPort: 0,
        metricsPort: 0,
        stateDir: join(dir, "state"),
        devVarsFile: join(dir, ".dev.vars"),
        devKeyFile: join(dir, ".dev.key"),
        runnerStorageDir: join(dir, "runner-storage"),
        modelsDir,
        logFile,
        vars: { ALLOW_INSECURE_ORIGINS: `${cdnOrigin.url},${webhookOrigin.url}`, ...(balancer ? { RUNNER_URLS: balancer.url } : {}) },
        runnerEnv: options.runnerEnv,
        runnerReplicas: options.runnerReplicas ?? 1,
      });
    } catch (error) {
      await closeProxies();
      // The folder stays, for its whole log.
      const log = await readFile(logFile, "utf8").catch(() => "");
      return fail(`the e2e stack (models: ${where}) did not start: ${String(error)}\n--- ${logFile} (end) ---\n${log.slice(-4000)}`, error);
    }
    if (balancer) balancer.upstreams = stack.runners.map((runner) => runner.url);
    if (!stack.model) {
      await closeProxies();
      await stack.stop();
      return fail(`no model with the id HVAR_MODEL=${process.env.HVAR_MODEL ?? ""} in ${where}`);
    }
    project.provide("stackError", null);
    project.provide("stack", {
      workerUrl: stack.workerUrl,
      runnerUrl: stack.runnerUrl,
      metricsUrl: stack.metricsUrl,
      adminSecret: stack.secrets.ADMIN_SECRET as string,
      runnerSecret: stack.secrets.RUNNER_HMAC_SECRET as string,
      devKey: { id: stack.devKey.id, secret: stack.devKey.secret, webhookSecret: stack.devKey.webhookSecret },
      model: stack.model,
      runnerPid: stack.runnerPid() as number,
      runners: stack.runners.map((runner) => ({ url: runner.url, metricsUrl: runner.metricsUrl, pid: runner.pid() as number })),
      balancerUrl: balancer?.url ?? null,
      cdnOrigin: cdnOrigin.url,
      cdnOriginRoute: cdnOrigin.routeFile,
      webhookOrigin: webhookOrigin.url,
      webhookOriginRoute: webhookOrigin.routeFile,
      dir,
      logFile,
    });
    return async () => {
      await closeProxies();
      await stack.stop();
      if (!process.env.HVAR_E2E_KEEP) await rm(dir, { recursive: true, force: true });
    };
  };
}

/** A path as messages show it: relative to the repository when it is inside it. */
function shown(path: string): string {
  const inside = relative(ROOT, path);
  return inside && !inside.startsWith("..") && !isAbsolute(inside) ? inside : path;
}

/** Project `e2e`: one stack for all its files, serving E2E_MODELS_DIR at E2E_RUNNER_TILES_PER_SECOND. */
export default stackSetup(E2E_MODELS_DIR, { runnerEnv: { HVAR_MAX_TILES_PER_SECOND: String(E2E_RUNNER_TILES_PER_SECOND) } });
