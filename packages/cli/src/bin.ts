// The `hvar` command: the process around runCli (its streams, environment and Ctrl-C).
import process from "node:process";
import { runCli } from "./main.js";

const interrupt = new AbortController();
process.once("SIGINT", () => interrupt.abort());
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interrupt.signal });
