import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: root("wrangler.toml") },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations(root("worker/migrations")),
          ADMIN_SECRET: "test-admin-secret",
          RESULT_SIGNING_KEYS: JSON.stringify({ t1: "dGVzdC1zaWduaW5nLWtleS0xLXRlc3Qtc2lnbmluZy1rZXk=" }),
          RUNNER_HMAC_SECRET: "test-runner-secret",
        },
      },
    }),
  ],
  test: {
    name: "worker",
    root: root("test/worker"),
    include: ["**/*.test.ts"],
    setupFiles: ["./apply-migrations.ts"],
  },
}));
