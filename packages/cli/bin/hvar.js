#!/usr/bin/env node
// The `hvar` command: the compiled CLI in dist/ (published packages are built; in the repository,
// `npm run build -w @hvar/cli`). A file of its own so that npm links the bin before any build.
import process from "node:process";

try {
  await import("../dist/cli/src/bin.js");
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("/dist/cli/src/bin.js")) throw error;
  process.stderr.write("hvar: not built yet: npm run build -w @hvar/cli\n");
  process.exitCode = 2;
}
