/**
 * Worker memory per upload: the peak resident memory of the worker's workerd process(es) while
 * CONCURRENCY uploads of a SIZE_MB image (a raw body, then multipart/form-data) go through
 * `POST /v1/upscales` under `wrangler dev`, over its resident memory at rest. Each upload is stored,
 * sniffed, dispatched and streamed to the runner, which refuses it (the test stub's `reject`
 * behaviour: a 422 after it read the whole body), so that no output copy is counted.
 *
 *   npm run bench:upload-memory [-- --size-mb 25 --concurrency 4]
 *
 * A Cloudflare isolate has 128 MB: an upload path that buffers the body holds it several times over
 * (the request body, its copy, the runner request), one that streams holds a few chunks and, for a
 * body of unknown length, one 5 MiB R2 part.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { deflateSync } from "node:zlib";
import { startDevWorker } from "./dev-worker";

const { values } = parseArgs({ options: { "size-mb": { type: "string", default: "25" }, concurrency: { type: "string", default: "4" } } });
const SIZE_BYTES = Math.floor(Number(values["size-mb"]) * 1024 * 1024);
const CONCURRENCY = Number(values.concurrency);

/** Every process under `pid` (this run's own: other workerd processes on the machine are not counted). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const found: number[] = [];
  const visit = (p: number) => {
    for (const child of children.get(p) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** Resident memory of the workerd processes under `pid`, in MB. */
function workerdRssMb(pid: number): number {
  let kb = 0;
  for (const p of descendants(pid)) {
    try {
      if (!readFileSync(`/proc/${p}/comm`, "utf8").startsWith("workerd")) continue;
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/**
 * A `size`-byte PNG of 1000x1000 (within the stub runner's limits at x1) whose header is real (the sniffer reads its size) and whose tEXt
 * chunks carry `hvar-test: reject` (the stub refuses it after reading it) and incompressible filler.
 */
function largePng(size: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const out = Buffer.alloc(data.length + 12);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "latin1");
    data.copy(out, 8);
    return out; // The CRC is left zero: nothing here checks it.
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1000, 0);
  ihdr.writeUInt32BE(1000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const head = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("tEXt", Buffer.from("hvar-test\0reject", "latin1"))]);
  const tail = Buffer.concat([chunk("IDAT", deflateSync(Buffer.alloc(16))), chunk("IEND", Buffer.alloc(0))]);
  const filler = chunk("zzZz", randomBytes(size - head.length - tail.length - 12));
  return Buffer.concat([head, filler, tail]);
}

async function main(): Promise<void> {
  const worker = await startDevWorker([`MAX_UPLOAD_BYTES:${SIZE_BYTES}`, "RUNNER_TIMEOUT_MS:60000"]);
  try {
    const { base, child, apiKey: secret } = worker;
    const pid = child.pid ?? 0;
    const image = largePng(SIZE_BYTES);
    const raw = () => fetch(`${base}/v1/upscales?scales=1`, { method: "POST", body: image, headers: { authorization: `Bearer ${secret}`, "content-type": "image/png" } });
    const multipart = () => {
      const form = new FormData();
      form.append("scales", "1");
      form.append("image", new Blob([image], { type: "image/png" }), "large.png");
      return fetch(`${base}/v1/upscales`, { method: "POST", body: form, headers: { authorization: `Bearer ${secret}` } });
    };
    // One of each first: the isolate's code and the local storage are warm before memory is read.
    for (const upload of [raw, multipart]) await (await upload()).arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 2000));

    console.log(`\nwrangler dev, ${CONCURRENCY} uploads of ${(SIZE_BYTES / 2 ** 20).toFixed(0)} MiB at once; workerd resident memory (MB)\n`);
    console.log("| body | at rest | peak | peak over rest | per upload | answers |\n| --- | ---: | ---: | ---: | ---: | --- |");
    for (const [name, upload] of [["raw", raw], ["multipart/form-data", multipart]] as const) {
      const rest = workerdRssMb(pid);
      let peak = rest;
      const sampler = setInterval(() => (peak = Math.max(peak, workerdRssMb(pid))), 25);
      const statuses = await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          const response = await upload();
          const body = (await response.json()) as { code?: string };
          return `${response.status} ${body.code ?? ""}`.trim();
        }),
      );
      clearInterval(sampler);
      peak = Math.max(peak, workerdRssMb(pid));
      const counts = [...new Set(statuses)].map((s) => `${statuses.filter((t) => t === s).length}x ${s}`).join(", ");
      console.log(`| ${name} | ${rest.toFixed(0)} | ${peak.toFixed(0)} | ${(peak - rest).toFixed(0)} | ${((peak - rest) / CONCURRENCY).toFixed(1)} | ${counts} |`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  } finally {
    await worker.stop();
  }
}

await main();
