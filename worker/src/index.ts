import { Hono } from "hono";
import type { AppEnv } from "./env";
import { notFound, onError } from "./http/problem";
import { health } from "./routes/health";

export { KeyMeter } from "./meter/key-meter";

const app = new Hono<AppEnv>().route("/", health);

app.notFound(notFound);
app.onError(onError);

export default app;
