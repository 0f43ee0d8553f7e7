import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The shipped model end to end: shipped-model.test.ts against a stack of its own (setup.shipped.ts)
 * that serves gpu-runner/models, the folder `npm start` serves. It runs after the other projects
 * (groupOrder 1), so its model never competes for the CPU with their tests.
 */
export default defineConfig({
  test: {
    name: "e2e-shipped",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["shipped-model.test.ts"],
    environment: "node",
    globalSetup: ["./setup.shipped.ts"],
    sequence: { groupOrder: 1 },
    // The real model on a CPU that may be busy: the session takes up to a minute (before the tests,
    // in globalSetup), each tile 0.1-0.5 s.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
