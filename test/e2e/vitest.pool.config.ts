import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The runner pool behind a load balancer: runner-pool.test.ts against a stack of its own
 * (setup.pool.ts) whose worker knows only a round-robin proxy in front of three runner replicas. It
 * runs last (groupOrder 2), so its three runners never compete for the CPU with the other stacks.
 */
export default defineConfig({
  test: {
    name: "e2e-pool",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["runner-pool.test.ts"],
    environment: "node",
    globalSetup: ["./setup.pool.ts"],
    sequence: { groupOrder: 2 },
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
