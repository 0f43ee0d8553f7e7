import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ProblemError } from "./problem";

/**
 * Answers 504 `timeout` when a request runs past `ms`. The bound sits above the longest honoured
 * `Prefer: wait`, so it only catches what is stuck (a slow binding, a runner that stopped reading).
 *
 * @example app.use("/v1/*", deadline({ ms: 90_000 }))
 */
export function deadline(options: { ms: number }): MiddlewareHandler<AppEnv> {
  if (!(options.ms > 0)) throw new Error("deadline: ms must be positive");
  const { ms } = options;
  return async function deadline(_c, next) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProblemError({ status: 504, code: "timeout", title: "The request took too long" })), ms);
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}
