// Sizes libuv's thread pool before Node first uses it (the runner image starts node with
// `--require` of this file): UV_THREADPOOL_SIZE is read once, when the pool starts, which is before any
// of the runner's own modules run. sharp encodes on that pool, one output per thread, and Node reads
// files and looks up hosts on it: the runner lets encodes take all but two threads
// (gpu-runner/src/image/encode-slots.ts), so a pool of HVAR_CPUS + 2 encodes on every CPU. HVAR_CPUS is
// read as gpu-runner/src/cpus.ts reads it; an UV_THREADPOOL_SIZE already set is left as it is.
const { availableParallelism } = require("node:os");

if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const asked = Number(process.env.HVAR_CPUS);
  const cpus = Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : availableParallelism();
  process.env.UV_THREADPOOL_SIZE = String(cpus + 2);
}
