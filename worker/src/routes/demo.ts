import { DomainError } from "@hvar/contract";
import { Hono } from "hono";
import type { AppEnv } from "../env";

/**
 * The demo page: static files in worker/public/demo (HTML, CSS, one script, example photos), served
 * from the ASSETS binding with the page's own Content-Security-Policy. Scripts, styles and API calls
 * stay on this origin; images may also be blob: URLs (the picked photo, the in-browser bicubic).
 *
 * The page holds no secret in any environment: the visitor pastes an API key, which stays in the
 * browser. On a local stack `npm start` prints a link that carries the development key in the URL
 * fragment (`/demo/#key=...`), which browsers never send to a server; the page accepts that only
 * on a loopback host.
 */
export const DEMO_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The files change with each deployment; a short cache keeps the page fresh after one. */
const CACHE_CONTROL = "public, max-age=300";

export const demo = new Hono<AppEnv>()
  .get("/", (c) => c.redirect("/demo/", 302))
  .get("/demo", (c) => c.redirect("/demo/", 301))
  .get("/demo/*", async (c) => {
    const asset = await c.env.ASSETS.fetch(c.req.raw);
    if (asset.status === 404) {
      await asset.body?.cancel();
      throw new DomainError({ kind: "not_found", code: "not_found", title: "No such page" });
    }
    const response = new Response(asset.body, asset);
    response.headers.set("content-security-policy", DEMO_CSP);
    if (response.ok) response.headers.set("cache-control", CACHE_CONTROL);
    return response;
  });
