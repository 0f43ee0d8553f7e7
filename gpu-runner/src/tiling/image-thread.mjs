// An image thread's entry. A worker thread does not inherit the tsx loader that runs the runner's
// TypeScript, so this registers it before loading the thread itself (as model/inference-thread.mjs).
import { register } from "tsx/esm/api";

register();
await import("./image-thread.ts");
