import type { ApiKey } from "./auth/keys";

/**
 * Bindings as the worker sees them: wrangler's generated `Env` (`npm run types`), which reads the
 * bindings from wrangler.toml and the secret names from .dev.vars.example.
 */
export type Bindings = Env;

/** Per-request values set by middleware: the request id, and the caller's key once authenticated. */
export interface Variables {
  requestId: string;
  apiKey: ApiKey;
}

export type AppEnv = { Bindings: Bindings; Variables: Variables };
