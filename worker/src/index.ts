// Before anything else: @hono/zod-openapi gives zod schemas `.openapi()` as it loads, and zod copies
// that method onto each schema as the schema is built, so it must load before any module that builds
// schemas the OpenAPI document names (packages/contract's, which worker/src/contract.ts names).
import "@hono/zod-openapi";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import type { Bindings } from "./env";
import { accessLog } from "./http/access-log";
import { deadline } from "./http/deadline";
import { openApiRouter } from "./http/openapi";
import { notFound, onError } from "./http/problem";
import { requestId } from "./http/request-id";
import { runCron } from "./jobs/cron";
import { adminKeys } from "./routes/admin-keys";
import { cdn } from "./routes/cdn";
import { demo } from "./routes/demo";
import { mountDocs } from "./routes/docs";
import { health } from "./routes/health";
import { model } from "./routes/model";
import { replicateWebhook } from "./routes/replicate-webhook";
import { results } from "./routes/results";
import { upscaleCancel } from "./routes/upscale-cancel";
import { upscaleDelete } from "./routes/upscale-delete";
import { upscaleList } from "./routes/upscale-list";
import { upscales } from "./routes/upscales";
import { usage } from "./routes/usage";

export { KeyMeter } from "./meter/key-meter";

/** Above MAX_WAIT_S (60 s) plus the work around a wait, below the platform's own limits. */
const REQUEST_DEADLINE_MS = 90_000;

const app = openApiRouter();
app.use(requestId());
app.use(accessLog());
app.use(
  secureHeaders({
    // Results are meant to be embedded with <img> on other sites; the rest is JSON for machines.
    crossOriginResourcePolicy: "cross-origin",
    crossOriginEmbedderPolicy: false,
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    referrerPolicy: "no-referrer",
    // Pages (the demo, /docs) set their own Content-Security-Policy; these are the defaults.
    overwrite: false,
  }),
);
app.use(
  "/v1/*",
  cors({
    // Browser clients send their key in Authorization, not cookies, so any origin may call.
    origin: "*",
    allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
    allowHeaders: ["authorization", "content-type", "idempotency-key", "prefer", "range", "if-none-match"],
    exposeHeaders: [
      "location",
      "retry-after",
      "ratelimit-limit",
      "ratelimit-remaining",
      "ratelimit-reset",
      "x-request-id",
      "idempotent-replayed",
      "preference-applied",
      "etag",
      "content-range",
    ],
    maxAge: 86_400,
  }),
);
app.use("/v1/*", deadline({ ms: REQUEST_DEADLINE_MS }));
app.use("/admin/*", deadline({ ms: REQUEST_DEADLINE_MS }));

app
  .route("/", health)
  .route("/", adminKeys)
  .route("/", usage)
  .route("/", model)
  .route("/", results)
  .route("/", upscales)
  .route("/", upscaleList)
  .route("/", upscaleCancel)
  .route("/", upscaleDelete)
  .route("/", replicateWebhook)
  .route("/", cdn);
mountDocs(app);
app.route("/", demo);

app.notFound(notFound);
app.onError(onError);

export default {
  fetch: app.fetch,
  /** The cron trigger (wrangler.toml): jobs/cron.ts. */
  async scheduled(_controller, env, ctx) {
    await runCron(env, (work) => ctx.waitUntil(work));
  },
} satisfies ExportedHandler<Bindings>;
