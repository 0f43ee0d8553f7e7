import { Hono } from "hono";

/** The baseline of the worker benchmark: a Hono route that does nothing, under the same wrangler dev. */
export default new Hono().get("/", (c) => c.text("ok"));
