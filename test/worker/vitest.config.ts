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
          // Two keys, as during a rotation: t1 signs, t0 (the previous key) still verifies.
          RESULT_SIGNING_KEYS: JSON.stringify({
            t1: "dGVzdC1zaWduaW5nLWtleS0xLXRlc3Qtc2lnbmluZy1rZXk=",
            t0: "dGVzdC1zaWduaW5nLWtleS0wLXRlc3Qtc2lnbmluZy1rZXk=",
          }),
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
