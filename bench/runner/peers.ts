/**
 * The strongest CPU peers, as runner model folders: SPAN-ch28 (NTIRE 2024 efficient-SR winner, the body
 * the shipped model starts from) and RLFN x4 (NTIRE 2022 winner), the published weights from
 * `../shared/pretrained` exported to ONNX in the runner's contract by `python -m hvar.export_peer`.
 *
 * The folders are a local cache in `bench/runner/.peers/<sources>-t<tile>[s<step>]/<network>` (git-ignored: the
 * weights are research-derived and never committed), built the first time they are asked for. `<sources>`
 * is a hash of the exporter's code, so a change to it exports again (and removes the older folders).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { discoverModels, type ModelEntry } from "../../gpu-runner/src/model/manifest";

export const PEER_NETWORKS = ["span-ch28", "rlfn-x4"] as const;

const PEERS_DIR = fileURLToPath(new URL("./.peers", import.meta.url));
const MODEL_DIR = fileURLToPath(new URL("../../model", import.meta.url));
const PYTHON = join(MODEL_DIR, ".venv", "bin", "python");
/** What the exported graphs are made by: the exporter and the two networks. */
const SOURCES = ["hvar/export_peer.py", "hvar/export_floor.py", "hvar/floor.py", "hvar/rlfn.py"];

async function sourcesHash(): Promise<string> {
  const hash = createHash("sha256");
  for (const file of SOURCES) hash.update(await readFile(join(MODEL_DIR, file)));
  return hash.digest("hex").slice(0, 12);
}

/**
 * The peers for tiles of side `tile` (with `tileStep`, tiles fitted to each image up to that side, as the
 * served model's), exported first where missing or no longer matching their manifest.
 */
export async function peerModels(tile: number, tileStep: number | undefined, log: (line: string) => void): Promise<ModelEntry[]> {
  const tiling = `t${tile}${tileStep === undefined ? "" : `s${tileStep}`}`;
  const name = `${await sourcesHash()}-${tiling}`;
  const dir = join(PEERS_DIR, name);
  const found = async () => (await discoverModels(dir)).models;
  const have = new Set((await found()).map((m) => m.manifest.id));
  if (have.size < PEER_NETWORKS.length) {
    const stale = (await readdir(PEERS_DIR).catch(() => [])).filter((d) => d.endsWith(`-${tiling}`) && d !== name);
    for (const old of stale) await rm(join(PEERS_DIR, old), { recursive: true, force: true });
  }
  for (const network of PEER_NETWORKS.filter((n) => !have.has(n))) {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run bash scripts/setup.sh (the peers are exported by the model package)`);
    log(`exporting ${network} for ${tiling} (python -m hvar.export_peer) ...`);
    const step = tileStep === undefined ? [] : ["--tile-step", String(tileStep)];
    await promisify(execFile)(PYTHON, ["-m", "hvar.export_peer", "--network", network, "--tile", String(tile), ...step, "--out", join(dir, network)], { cwd: MODEL_DIR });
  }
  const models = await found();
  const absent = PEER_NETWORKS.filter((n) => !models.some((m) => m.manifest.id === n));
  if (absent.length > 0) throw new Error(`peer export left no usable model for ${absent.join(", ")} in ${dir}`);
  return PEER_NETWORKS.map((n) => models.find((m) => m.manifest.id === n) as ModelEntry);
}
