/**
 * The peer a JavaScript user would otherwise pick: UpscalerJS's ESRGAN models (npm `upscaler` with
 * `@upscalerjs/esrgan-slim` / `-thick`) on TensorFlow.js with the wasm backend (tfjs-node does not
 * install here). The weights ship inside the npm packages; a loopback HTTP server hands them to
 * tf.loadLayersModel, so nothing is fetched from a CDN (UpscalerJS's default).
 */
import { createReadStream, existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, normalize } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import slimX4 from "@upscalerjs/esrgan-slim/4x";
import thickX4 from "@upscalerjs/esrgan-thick/4x";
import Upscaler from "upscaler";

const require = createRequire(import.meta.url);
/** A package's folder, found from its entry point (these packages do not export package.json). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

export const PEER_MODELS = {
  "esrgan-slim": { definition: slimX4, dir: packageDir("@upscalerjs/esrgan-slim") },
  "esrgan-thick": { definition: thickX4, dir: packageDir("@upscalerjs/esrgan-thick") },
} as const;
export type PeerName = keyof typeof PEER_MODELS;

let backendReady: Promise<void> | undefined;

/** tfjs on its wasm backend, with the .wasm files from node_modules (not a CDN). */
export function useWasmBackend(threads: number): Promise<void> {
  backendReady ??= (async () => {
    setWasmPaths(`${join(packageDir("@tensorflow/tfjs-backend-wasm"), "wasm-out")}/`);
    setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("the tfjs wasm backend did not initialise");
    await tf.ready();
  })();
  return backendReady;
}

/** Serves the packages' model files on 127.0.0.1 for tf.loadLayersModel. */
async function serveModels(): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const [, name, ...rest] = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).split("/");
    const model = PEER_MODELS[name as PeerName];
    const path = model ? normalize(join(model.dir, "models", ...rest)) : undefined;
    if (!model || !path || !path.startsWith(join(model.dir, "models"))) {
      res.writeHead(404).end();
      return;
    }
    createReadStream(path)
      .on("error", () => res.writeHead(404).end())
      .pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no loopback address");
  return { server, base: `http://127.0.0.1:${address.port}` };
}

export interface Peer {
  /** x4 of an interleaved RGB image; returns interleaved RGB, 4x the size. */
  upscale(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function loadPeer(name: PeerName, patchSize: number, padding: number): Promise<Peer> {
  const { server, base } = await serveModels();
  const { definition } = PEER_MODELS[name];
  const upscaler = new Upscaler({ model: { ...definition, path: `${base}/${name}/x4/model.json` } });
  await upscaler.getModel();
  return {
    async upscale(rgb, width, height) {
      const input = tf.tensor3d(rgb, [height, width, 3], "int32");
      const output = await upscaler.upscale(input, { output: "tensor", patchSize, padding });
      input.dispose();
      const data = await output.data();
      output.dispose();
      return Uint8Array.from(data, (v) => Math.max(0, Math.min(255, Math.round(v))));
    },
    async close() {
      await upscaler.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
