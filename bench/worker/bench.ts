/**
 * Worker benchmark: requests per second and p50/p99 latency of (1) a cache-hit upscale,
 * (2) a result download through a signed URL, (3) a bare Hono route, (4) the bare route writing
 * one log line, as our access log does, and (5) the least any cache hit must do (bare-worker.ts: hash
 * the uploaded image, write one D1 batch of two rows), all under `wrangler dev` in the same run, on the same machine,
 * with each route's latency as a multiple of the bare route's. The runner is the test stub (test/worker/setup): only the
 * first upscale reaches it, every measured upscale is a cache hit. The routes take turns (ROUNDS
 * rounds of REQUESTS / ROUNDS each), so that a machine whose load drifts during the run weighs on
 * every row alike; the load average is printed with the table.
 *
 *   npm run bench:worker [-- --requests 400 --concurrency 8 --rounds 5]
 *   npm run bench:worker -- --inspector                       # with wrangler's DevTools inspector attached
 *   npm run bench:worker -- --profile bench/worker/profiles   # and where each route's CPU goes
 *
 * The worker runs without the DevTools inspector, as in production (dev-server.ts): attached, it carries
 * every console.log to wrangler and makes the access log cost more than a bare route. --inspector times
 * with it attached; --profile needs it and attaches it.
 *
 * With --profile, each route is then run once more (`--requests` requests) under a CPU profile of its
 * worker's isolate (profile.ts): the isolate's busy milliseconds per request, next to the bare route's,
 * and the functions that spent them; the profiles are saved as `<route>.cpuprofile` in that folder.
 *
 * (npm runs it with node_modules/.bin first on PATH, so wrangler gets the repository's Node 22.)
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { deflateSync } from "node:zlib";
import { STUB_MODEL } from "../../test/worker/setup/runner-stub";
import { startDevWorker, until, wranglerDev } from "./dev-worker";
import { profileWhile, summarize } from "./profile";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "400" },
    concurrency: { type: "string", default: "8" },
    rounds: { type: "string", default: "5" },
    profile: { type: "string" },
    inspector: { type: "boolean", default: false },
  },
});
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
/** The DevTools inspector is attached only when asked for, or to profile (README.md: it costs every log line). */
const INSPECTOR = values.inspector || values.profile !== undefined;

/** A real 64x48 PNG; its size does not matter for a cache hit. */
function png(): Buffer {
  const width = 64;
  const height = 48;
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = (table[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const typed = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const out = Buffer.alloc(typed.length + 8);
    out.writeUInt32BE(data.length, 0);
    typed.copy(out, 4);
    out.writeUInt32BE(crc(typed), typed.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((width * 3 + 1) * height, 0x80);
  for (let y = 0; y < height; y++) raw[y * (width * 3 + 1)] = 0;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
}

interface Route {
  name: string;
  /** The file name of its CPU profile. */
  slug: string;
  expected: number;
  request: () => Promise<Response>;
  /** The inspector port of the worker that answers it, when one is attached. */
  inspectorPort?: number;
}

/** `count` requests of the route, `CONCURRENCY` in flight; every answer must have the expected status. */
async function burst(route: Route, count: number, latencies: number[]): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) {
        const t0 = performance.now();
        const response = await route.request();
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (response.status !== route.expected) throw new Error(`${route.name}: ${response.status}, expected ${route.expected}`);
      }
    }),
  );
  return (performance.now() - start) / 1000;
}

/** `REQUESTS` requests of each route, the routes taking turns over `ROUNDS` rounds, after a warm-up. */
async function measure(routes: Route[]): Promise<Result[]> {
  for (const route of routes) for (let i = 0; i < 20; i++) await (await route.request()).arrayBuffer();
  const samples = routes.map(() => ({ latencies: [] as number[], seconds: 0 }));
  for (let round = 0; round < ROUNDS; round++) {
    const count = Math.ceil(REQUESTS / ROUNDS);
    for (const [i, route] of routes.entries()) {
      const sample = samples[i];
      if (sample) sample.seconds += await burst(route, count, sample.latencies);
    }
  }
  return routes.map((route, i) => {
    const { latencies, seconds } = samples[i] ?? { latencies: [], seconds: 0 };
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    return { name: route.name, rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
  });
}

/** Each route once more under a CPU profile of its isolate: busy ms per request and the hottest functions. */
async function profileRoutes(routes: Route[], folder: string): Promise<void> {
  mkdirSync(folder, { recursive: true });
  for (const route of routes) {
    const file = join(folder, `${route.slug}.cpuprofile`);
    if (route.inspectorPort === undefined) throw new Error(`${route.name}: no inspector to profile through`);
    const profile = await profileWhile(route.inspectorPort, file, async () => void (await burst(route, REQUESTS, [])));
    const { busyMs, hotspots } = summarize(profile);
    console.log(`\n${route.name}: the isolate busy ${(busyMs / REQUESTS).toFixed(2)} ms per request (${file})\n`);
    console.log("| function (bundle line) | self | total |\n| --- | ---: | ---: |");
    for (const h of hotspots) console.log(`| ${h.name} | ${(100 * h.self).toFixed(1)}% | ${(100 * h.total).toFixed(1)}% |`);
  }
}

async function main(): Promise<void> {
  // The worker serves the stub's model, so that the stub's results are cached under MODEL_VERSION.
  // The baselines' D1 is on disk like the worker's (dev-worker.ts), so that their writes cost the same.
  const bareState = mkdtempSync(join(tmpdir(), "hvar-bench-bare-"));
  const [worker, bareDev] = await Promise.all([
    startDevWorker([`MODEL_VERSION:${STUB_MODEL.id}@${STUB_MODEL.version}`], INSPECTOR),
    wranglerDev(["--config", "bench/worker/bare.wrangler.toml", "--persist-to", bareState], INSPECTOR),
  ]);
  try {
    const { base, apiKey: secret } = worker;
    const bare = `${bareDev.base}/`;
    await until(bare, bareDev.child);
    const image = png();
    const upscale = () =>
      fetch(`${base}/v1/upscales?scales=2`, { method: "POST", body: image, headers: { authorization: `Bearer ${secret}`, "content-type": "image/png", prefer: "wait=30" } });
    const firstResponse = await upscale();
    const first = (await firstResponse.json()) as { outputs?: { url: string }[] };
    const resultUrl = first.outputs?.[0]?.url;
    if (!resultUrl) throw new Error(`the first upscale did not succeed: ${firstResponse.status} ${JSON.stringify(first)}`);

    const loadBefore = loadavg();
    const routes: Route[] = [
      { name: "bare Hono route", slug: "bare", expected: 200, request: () => fetch(bare), inspectorPort: bareDev.inspectorPort },
      { name: "bare route + one log line", slug: "bare-logged", expected: 200, request: () => fetch(`${bare}logged`), inspectorPort: bareDev.inspectorPort },
      {
        name: "bare route + a hit's minimum (hash the body, one D1 batch)",
        slug: "minimum-hit",
        expected: 200,
        request: () => fetch(`${bare}minimum-hit`, { method: "POST", body: image, headers: { "content-type": "image/png" } }),
        inspectorPort: bareDev.inspectorPort,
      },
      { name: "cache-hit upscale (POST /v1/upscales)", slug: "cache-hit", expected: 200, request: upscale, inspectorPort: worker.inspectorPort },
      { name: "result download (GET signed URL)", slug: "download", expected: 200, request: () => fetch(resultUrl), inspectorPort: worker.inspectorPort },
    ];
    const results = await measure(routes);
    const load = (values: number[]) => values.map((v) => v.toFixed(1)).join(" ");
    console.log(`\nwrangler dev (${INSPECTOR ? "DevTools inspector attached" : "no inspector"}), ${REQUESTS} requests per route in ${ROUNDS} rounds, ${CONCURRENCY} in flight; load average ${load(loadBefore)} before, ${load(loadavg())} after\n`);
    const [baseline] = results;
    console.log("| route | requests/s | p50 (ms) | p99 (ms) | × bare p50 | × bare p99 |\n| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const r of results) {
      const ratios = baseline ? `${(r.p50 / baseline.p50).toFixed(2)} | ${(r.p99 / baseline.p99).toFixed(2)}` : "| ";
      console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${ratios} |`);
    }
    if (values.profile) await profileRoutes(routes, values.profile);
  } finally {
    bareDev.child.kill("SIGTERM");
    await worker.stop();
    rmSync(bareState, { recursive: true, force: true });
  }
}

await main();
