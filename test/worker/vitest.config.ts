import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { modelName } from "@hvar/contract";
import { defineConfig } from "vitest/config";
import { fakeInternet } from "./setup/fake-internet";
import { RUNNER_SECRET } from "./setup/global-setup";
import { STUB_MODEL } from "./setup/runner-stub";

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

export default defineConfig(async () => ({
  plugins: [
    // The runner stubs are started by global-setup.ts; their URLs reach the worker as bindings.
    cloudflareTest(async ({ inject }) => ({
      wrangler: { configPath: root("wrangler.toml") },
      miniflare: {
        bindings: {
          RUNNER_URLS: inject("runnerUrls"),
          TEST_DEAD_RUNNER_URL: inject("deadRunnerUrl"),
          // The model the runner stubs serve: dispatch passes over runners that serve another one.
          MODEL_VERSION: modelName(STUB_MODEL),
          MAX_UPLOAD_BYTES: String(256 * 1024),
          TEST_MIGRATIONS: await readD1Migrations(root("worker/migrations")),
          ADMIN_SECRET: "test-admin-secret",
          // Two keys, as during a rotation: t1 signs, t0 (the previous key) still verifies.
          RESULT_SIGNING_KEYS: JSON.stringify({
            t1: "dGVzdC1zaWduaW5nLWtleS0xLXRlc3Qtc2lnbmluZy1rZXk=",
            t0: "dGVzdC1zaWduaW5nLWtleS0wLXRlc3Qtc2lnbmluZy1rZXk=",
          }),
          RUNNER_HMAC_SECRET: RUNNER_SECRET,
          REPLICATE_WEBHOOK_SECRET: "whsec_dGVzdC1yZXBsaWNhdGUtd2ViaG9vay1zZWNyZXQ=",
          // CDN sources: a short deadline that a slow test origin can pass, and one plain-http origin
          // exempted as local development would exempt its page server.
          CDN_SOURCE_TIMEOUT_MS: "1000",
          ALLOW_INSECURE_ORIGINS: "http://dev-origin.example",
        },
        // Every fetch the worker makes goes through this (runner stubs pass through to loopback).
        outboundService: fakeInternet({ passThrough: [...inject("runnerUrls").split(","), inject("otherModelRunner").url, inject("deadRunnerUrl")] }),
      },
    })),
  ],
  test: {
    name: "worker",
    root: root("test/worker"),
    include: ["**/*.test.ts"],
    setupFiles: ["./apply-migrations.ts"],
    globalSetup: ["./setup/global-setup.ts"],
    // One runtime for all files: starting workerd per file costs seconds on a busy machine, and
    // every test makes its own API keys, so files share storage without seeing each other's data.
    isolate: false,
  },
}));
