import type { TestProject } from "vitest/node";
import { deadUrl, startRunnerStub } from "./runner-stub";

export const RUNNER_SECRET = "test-runner-secret";

declare module "vitest" {
  export interface ProvidedContext {
    runnerUrls: string;
    deadRunnerUrl: string;
  }
}

/** Two stub runners (a pool) and one address where no runner answers, for the whole run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runners = await Promise.all([startRunnerStub(RUNNER_SECRET), startRunnerStub(RUNNER_SECRET)]);
  project.provide("runnerUrls", runners.map((r) => r.url).join(","));
  project.provide("deadRunnerUrl", await deadUrl());
  return async () => {
    await Promise.all(runners.map((r) => r.close()));
  };
}
