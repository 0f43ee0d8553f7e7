/**
 * Where results and job records live. The runner writes results here before it reports a job done,
 * so whatever is in the store survives a restart. Keys are `/`-separated, never start with `/` and
 * never contain `..` (callers build them from validated ids only).
 */
export interface ObjectStore {
  put(key: string, bytes: Uint8Array, contentType: string): Promise<void>;
  /** undefined when the key does not exist. */
  get(key: string): Promise<StoredObject | undefined>;
  /** Removes the object; a key that does not exist is no error. */
  delete(key: string): Promise<void>;
}

export interface StoredObject {
  bytes: Buffer;
  contentType: string;
}

const SAFE_KEY = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]+$/;

/** Guards adapters against path traversal: keys come from ids, but a store must not trust that. */
export function assertSafeKey(key: string): void {
  if (!SAFE_KEY.test(key) || key.includes("//")) throw new Error(`unsafe storage key: ${JSON.stringify(key)}`);
}
