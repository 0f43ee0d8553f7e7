import { fileURLToPath } from "node:url";
import { z } from "zod";

const defaultModelsDir = fileURLToPath(new URL("../models", import.meta.url));

/** Runner settings, all from the environment, checked once at start. */
export const RunnerConfigSchema = z.object({
  HVAR_RUNNER_HOST: z.string().default("127.0.0.1"),
  HVAR_RUNNER_PORT: z.coerce.number().int().min(0).max(65535).default(8788),
  HVAR_MODELS_DIR: z.string().default(defaultModelsDir),
  HVAR_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RunnerConfig {
  const result = RunnerConfigSchema.safeParse(env);
  if (!result.success) throw new Error(`invalid runner configuration:\n${z.prettifyError(result.error)}`);
  return result.data;
}
