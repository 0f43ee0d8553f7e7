import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The hvar command's own tests, on Node: its command line, output names, progress and exit codes,
 * without a deployment. Against the real stack: test/e2e/cli.test.ts.
 */
export default defineConfig({
  test: {
    name: "cli",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    environment: "node",
  },
});
