import { defineConfig } from "vitest/config";

// One project per runtime: the worker's tests run inside workerd, the runner's on Node.
export default defineConfig({
  test: {
    projects: ["test/worker/vitest.config.ts", "test/gpu-runner/vitest.config.ts"],
  },
});
