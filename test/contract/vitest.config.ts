import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The worker-runner contract's own tests (packages/contract), on Node: what both sides rely on. */
export default defineConfig({
  test: {
    name: "contract",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    environment: "node",
  },
});
