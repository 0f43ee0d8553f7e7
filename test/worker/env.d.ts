import type { D1Migration } from "cloudflare:test";
import type { Bindings } from "../../worker/src/env";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      TEST_MIGRATIONS: D1Migration[];
      TEST_DEAD_RUNNER_URL: string;
    }
  }
}
