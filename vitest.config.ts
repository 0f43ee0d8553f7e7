import { defineConfig } from "vitest/config";

// One project per runtime: the worker's tests run inside workerd, the runner's and the contract's
// (packages/contract) on Node; the e2e tests (Node) start the real stack, as `npm start` does, and
// use it over HTTP and in a browser;
// e2e-shipped starts one of its own with the shipped model (gpu-runner/models), after the others;
// e2e-pool one with three runner replicas behind a load balancer, last;
// acceptance checks that model's pictures through the runner's path, also after the others.
export default defineConfig({
  test: {
    projects: ["test/worker/vitest.config.ts", "test/gpu-runner/vitest.config.ts", "test/contract/vitest.config.ts", "test/client/vitest.config.ts", "test/cli/vitest.config.ts", "test/e2e/vitest.config.ts", "test/e2e/vitest.shipped.config.ts", "test/e2e/vitest.pool.config.ts", "test/acceptance/vitest.config.ts"],
  },
});
