import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Acceptance checks of the model `npm start` serves (gpu-runner/models, or HVAR_MODELS_DIR and
 * HVAR_MODEL), through the runner's own path. After the other projects (groupOrder 1), beside
 * e2e-shipped, so the model never competes for the CPU with their tests.
 */
export default defineConfig({
  test: {
    name: "acceptance",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    environment: "node",
    sequence: { groupOrder: 1 },
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
