import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { freePort, startStack } from "../../scripts/stack";

/**
 * THE MODELS THE E2E RUNNER SERVES: one place to switch. Today the contract test model (a tiny ONNX
 * graph with the real model's inputs and outputs); once the shipped model is in gpu-runner/models,
 * make SHIPPED the default here. `HVAR_MODELS_DIR=... npm test` overrides either for one run.
 * The tests check sizes, formats, states and accounting, never pixel values, so both pass them.
 */
const CONTRACT_FIXTURE = fileURLToPath(new URL("../gpu-runner/fixtures", import.meta.url));
export const SHIPPED = fileURLToPath(new URL("../../gpu-runner/models", import.meta.url));
export const E2E_MODELS_DIR = process.env.HVAR_MODELS_DIR ?? CONTRACT_FIXTURE;

export interface E2EStack {
  workerUrl: string;
  runnerUrl: string;
  adminSecret: string;
  runnerSecret: string;
  devKey: { id: string; secret: string; webhookSecret: string };
  model: string | null;
  runnerPid: number;
  /** A plain-http origin on loopback that the worker may fetch CDN sources from (ALLOW_INSECURE_ORIGINS); cdn.e2e.test.ts serves it. */
  cdnOrigin: string;
  dir: string;
  logFile: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: E2EStack;
  }
}

/** Starts the stack once for all e2e files; stops it and removes its folder afterwards (HVAR_E2E_KEEP=1 keeps it). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), "hvar-e2e-"));
  const logFile = join(dir, "stack.log");
  // Reserved before the worker starts, because the worker reads ALLOW_INSECURE_ORIGINS at start.
  const cdnOrigin = `http://127.0.0.1:${await freePort()}`;
  let stack;
  try {
    stack = await startStack({
      workerPort: 0,
      runnerPort: 0,
      stateDir: join(dir, "state"),
      devVarsFile: join(dir, ".dev.vars"),
      devKeyFile: join(dir, ".dev.key"),
      runnerStorageDir: join(dir, "runner-storage"),
      modelsDir: E2E_MODELS_DIR,
      logFile,
      vars: { ALLOW_INSECURE_ORIGINS: cdnOrigin },
    });
  } catch (error) {
    const log = await readFile(logFile, "utf8").catch(() => "");
    throw new Error(`the e2e stack did not start: ${String(error)}\n--- ${logFile} (end) ---\n${log.slice(-4000)}`, { cause: error });
  }
  if (!stack.model) throw new Error(`no usable model in ${E2E_MODELS_DIR} (see E2E_MODELS_DIR in test/e2e/setup.ts)`);
  project.provide("stack", {
    workerUrl: stack.workerUrl,
    runnerUrl: stack.runnerUrl,
    adminSecret: stack.secrets.ADMIN_SECRET as string,
    runnerSecret: stack.secrets.RUNNER_HMAC_SECRET as string,
    devKey: { id: stack.devKey.id, secret: stack.devKey.secret, webhookSecret: stack.devKey.webhookSecret },
    model: stack.model,
    runnerPid: stack.runnerPid() as number,
    cdnOrigin,
    dir,
    logFile,
  });
  return async () => {
    await stack.stop();
    if (!process.env.HVAR_E2E_KEEP) await rm(dir, { recursive: true, force: true });
  };
}
