// The API reference page (/docs, worker/src/routes/docs.ts) runs Scalar's renderer from this origin,
// never from a CDN: this copies the renderer's standalone bundle from @scalar/api-reference into the
// worker's static assets (worker/public/docs/scalar.js, git-ignored). npm runs it after every install
// (the root package's postinstall), so the file is there wherever the packages are.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "worker/public/docs/scalar.js");
let entry;
try {
  entry = createRequire(import.meta.url).resolve("@scalar/api-reference");
} catch {
  // An install without the worker's packages (the runner's container: npm ci --workspace gpu-runner).
  console.log("reference-assets: @scalar/api-reference is not installed; /docs will have no script");
  process.exit(0);
}
mkdirSync(dirname(target), { recursive: true });
copyFileSync(join(dirname(entry), "browser/standalone.js"), target);
