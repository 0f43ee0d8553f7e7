/**
 * Bindings as the worker sees them: wrangler's generated `Env` (`npm run types`), which reads the
 * bindings from wrangler.toml and the secret names from .dev.vars.example.
 */
export type Bindings = Env;

export type AppEnv = { Bindings: Bindings };
