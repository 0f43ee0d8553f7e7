import { Hono } from "hono";
import type { AppEnv } from "./env";
import { notFound, onError } from "./http/problem";
import { adminKeys } from "./routes/admin-keys";
import { health } from "./routes/health";
import { results } from "./routes/results";
import { upscales } from "./routes/upscales";
import { usage } from "./routes/usage";

export { KeyMeter } from "./meter/key-meter";

const app = new Hono<AppEnv>().route("/", health).route("/", adminKeys).route("/", usage).route("/", results).route("/", upscales);

app.notFound(notFound);
app.onError(onError);

export default app;
