import type { Bindings } from "../env";
import type { KeyMeter } from "./key-meter";

/** The KeyMeter of one API key: all of a key's quota and rate decisions serialize there. */
export function meterOf(env: Bindings, keyId: string): DurableObjectStub<KeyMeter> {
  return env.KEY_METER.get(env.KEY_METER.idFromName(keyId));
}
