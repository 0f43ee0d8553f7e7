import type { RunnerLimits } from "@hvar/contract";

/**
 * What the runner stubs (runner-stub.ts) say they accept (`GET /v1/model`, as a runner reads it from its model manifest):
 * smaller than the worker's defaults, so that real test images can cross them (x4 allows 256x256
 * inputs), and so that the worker's tests show the edge enforcing the runners' limits. Their model is
 * deterministic, as the shipped floor is (`sampling: false`): the worker drops a temperature for it;
 * and, as the shipped floor, it takes a clean-up strength (`cleanup: true`).
 */
export const STUB_LIMITS: RunnerLimits = { maxInputPixels: 2 ** 22, maxOutputPixels: 1024 * 1024, maxBodyBytes: 32 * 1024 * 1024, scales: [1, 2, 4], sampling: false, cleanup: true };
