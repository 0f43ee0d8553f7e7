// The inference thread's entry. A worker thread does not inherit the tsx loader that runs the
// runner's TypeScript (whether `node --import tsx`, the `tsx` command or bin/hvar-runner.mjs started
// it), so this registers it before loading the thread itself.
import { register } from "tsx/esm/api";

register();
await import("./inference-thread.ts");
