import type { D1Database } from "@cloudflare/workers-types/index.ts";
import { Hono } from "hono";

/**
 * The baselines of the worker benchmark, under the same wrangler dev: a Hono route that does nothing;
 * one that also writes one access-log-like line (wrangler dev carries each console.log through its
 * inspector, which costs the isolate more than the route itself: see README.md); and one that does the
 * least any cache hit must do (`POST /minimum-hit`): read the uploaded image and hash it (the cache key),
 * then write one D1 batch of two rows (the hit's job and its ledger row) and answer JSON. A hit's
 * cost above that one is the worker's own.
 */
type Env = { Bindings: { DB: D1Database } };

const SCHEMA = [
  "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, sha256 TEXT NOT NULL, outputs TEXT NOT NULL, created_at INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, key_id TEXT NOT NULL, output_mp REAL NOT NULL)",
];
let schema: Promise<unknown> | undefined;

const outputs = JSON.stringify([{ scale: 2, width: 128, height: 96, type: "image/png", bytes: 20_000 }]);

export default new Hono<Env>()
  .get("/", (c) => c.text("ok"))
  .get("/logged", (c) => {
    console.log(JSON.stringify({ level: "info", requestId: "req_bench", method: "GET", path: "/logged", status: 200, ms: 0 }));
    return c.text("ok");
  })
  .post("/minimum-hit", async (c) => {
    const db = c.env.DB;
    schema ??= db.batch(SCHEMA.map((sql) => db.prepare(sql)));
    await schema;
    const digest = await crypto.subtle.digest("SHA-256", await c.req.arrayBuffer());
    const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    const id = crypto.randomUUID();
    await db.batch([
      db.prepare("INSERT INTO jobs (id, key_id, sha256, outputs, created_at) VALUES (?, ?, ?, ?, ?)").bind(id, "k_bench", sha256, outputs, Date.now()),
      db.prepare("INSERT INTO ledger (job_id, key_id, output_mp) VALUES (?, ?, ?)").bind(id, "k_bench", 0.012),
    ]);
    return c.json({ id, status: "succeeded", outputs: JSON.parse(outputs) as unknown });
  });
