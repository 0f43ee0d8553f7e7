import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The client package's own tests, on Node: webhook verification, error parsing, polling (against a
 * scripted fetch), and its types against the worker's OpenAPI document. The worker is loaded
 * in-process for its document only, so `cloudflare:workers` (the Durable Object base class) is a stub.
 */
export default defineConfig({
  resolve: { alias: { "cloudflare:workers": fileURLToPath(new URL("./setup/cloudflare-workers.ts", import.meta.url)) } },
  test: {
    name: "client",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    environment: "node",
  },
});
