import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

/**
 * End-to-end tests: one real stack (wrangler dev + runner, as `npm start` starts it) for the whole
 * project, started by setup.ts on free ports with fresh state; the files run one after another
 * because they share it (and one of them kills its runner). shipped-model.test.ts is not part of it:
 * it is project `e2e-shipped` (vitest.shipped.config.ts), with a stack of its own; nor is
 * runner-pool.test.ts, project `e2e-pool` (vitest.pool.config.ts), whose stack has three runners.
 */
export default defineConfig({
  test: {
    name: "e2e",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    exclude: [...configDefaults.exclude, "shipped-model.test.ts", "runner-pool.test.ts"],
    environment: "node",
    globalSetup: ["./setup.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
