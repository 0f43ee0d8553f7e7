import { Hono } from "hono";

/**
 * The baselines of the worker benchmark, under the same wrangler dev: a Hono route that does nothing,
 * and one that also writes one access-log-like line (wrangler dev carries each console.log through
 * its inspector, which costs the isolate more than the route itself: see README.md).
 */
export default new Hono()
  .get("/", (c) => c.text("ok"))
  .get("/logged", (c) => {
    console.log(JSON.stringify({ level: "info", requestId: "req_bench", method: "GET", path: "/logged", status: 200, ms: 0 }));
    return c.text("ok");
  });
