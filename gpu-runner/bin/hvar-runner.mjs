#!/usr/bin/env node
// The `hvar-runner` command. The runner is TypeScript run by tsx (no build step), so this shim
// registers tsx's loader and hands over to the CLI.
import process from "node:process";
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../src/cli/main.ts");
process.exitCode = await runCli(process.argv.slice(2));
