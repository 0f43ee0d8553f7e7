import { availableParallelism } from "node:os";
import { z } from "zod";

/** HVAR_CPUS: a whole number of CPUs; libuv's pool, sized from it, takes at most 1024 threads. */
export const cpusSchema = z.coerce.number().int().min(1).max(1000).optional();

/**
 * The CPUs this runner may use, which every pool of threads it starts is sized from (the image
 * threads, libvips' threads per encode, onnxruntime's on the CPU, and libuv's, gpu-runner/bin/uv-threads.cjs).
 * HVAR_CPUS when set: in a container the OS reports the node's cores, not the pod's share of them, so
 * the Deployment sets it from the pod's CPU request (infra/k8s/runner-deployment.yaml). Else the cores
 * the OS grants this process. A value the schema refuses stops the runner at start (config.ts).
 */
export const CPUS = cpusOr(cpusSchema.catch(undefined).parse(process.env.HVAR_CPUS));

/** HVAR_CPUS as parsed, else the cores the OS grants this process. */
export function cpusOr(asked: number | undefined): number {
  return asked ?? availableParallelism();
}
