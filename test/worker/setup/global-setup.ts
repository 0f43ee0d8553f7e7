import { type Model, modelName } from "@hvar/contract";
import type { TestProject } from "vitest/node";
import { STUB_MODEL, deadUrl, startRunnerStub } from "./runner-stub";

export const RUNNER_SECRET = "test-runner-secret";

/** What a runner deployed with another model than the worker's MODEL_VERSION serves. */
const OTHER_MODEL: Model = { ...STUB_MODEL, version: "0.0.0-other" };

declare module "vitest" {
  export interface ProvidedContext {
    runnerUrls: string;
    deadRunnerUrl: string;
    /** A runner outside the pool that serves OTHER_MODEL, and that model's name. */
    otherModelRunner: { url: string; model: string };
  }
}

/** Two stub runners (a pool), one runner with another model, and one address where no runner answers, for the whole run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runners = await Promise.all([startRunnerStub(RUNNER_SECRET), startRunnerStub(RUNNER_SECRET)]);
  const otherModel = await startRunnerStub(RUNNER_SECRET, OTHER_MODEL);
  project.provide("runnerUrls", runners.map((r) => r.url).join(","));
  project.provide("otherModelRunner", { url: otherModel.url, model: modelName(OTHER_MODEL) });
  project.provide("deadRunnerUrl", await deadUrl());
  return async () => {
    await Promise.all([...runners, otherModel].map((r) => r.close()));
  };
}
