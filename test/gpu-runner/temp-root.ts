import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** The folder that holds every folder the gpu-runner tests write (`tempDir` in helpers.ts). */
    tempRoot: string;
  }
}

/**
 * A vitest `globalSetup`: one folder in the system temp directory for the whole project, removed with
 * all it holds once the last test file has ended. Removing it here rather than after each test also
 * catches failed tests and the writes of jobs a test's runner still had in flight when it ended.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), "hvar-gpu-runner-tests-"));
  project.provide("tempRoot", root);
  return () => rm(root, { recursive: true, force: true });
}
