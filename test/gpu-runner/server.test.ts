import { describe, expect, it } from "vitest";
import type { ModelEntry } from "../../gpu-runner/src/model/manifest";
import { createApp } from "../../gpu-runner/src/server";

const model: ModelEntry = {
  onnxPath: "/models/m/model.onnx",
  manifest: {
    id: "m",
    version: "1",
    tile: 32,
    scales: [1, 2, 4],
    tokens: 10,
    opset: 18,
    precision: "fp32",
    sha256: "0".repeat(64),
    config: {},
    evaluation: {},
  },
};

describe("runner health", () => {
  it("is alive even without a model", async () => {
    const response = await createApp({ models: [], rejected: [] }).request("/healthz");
    expect(response.status).toBe(200);
  });

  it("is not ready until a model is loaded, and says why", async () => {
    const rejected = [{ dir: "/models/x", reason: "model.onnx is missing" }];
    const response = await createApp({ models: [], rejected }).request("/readyz");
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "no_model", rejected });
  });

  it("is ready with a verified model and names it", async () => {
    const response = await createApp({ models: [model], rejected: [] }).request("/readyz");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready", models: [{ id: "m", version: "1" }] });
  });
});
