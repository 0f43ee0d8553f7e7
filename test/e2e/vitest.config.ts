import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * End-to-end tests: one real stack (wrangler dev + runner, as `npm start` starts it) for the whole
 * project, started by setup.ts on free ports with fresh state; the files run one after another
 * because they share it (and one of them kills its runner).
 */
export default defineConfig({
  test: {
    name: "e2e",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    environment: "node",
    globalSetup: ["./setup.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
