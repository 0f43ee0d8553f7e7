/**
 * A small cache in the isolate's memory: entries live `ttlMs` and at most `maxEntries` are kept (the
 * oldest go first). It answers hot reads (an API key, the result-cache index, a job's deletion mark)
 * without a round trip; each use says how stale an entry may be, and deletes what its own writes
 * change, so that this isolate sees them at once and every other isolate within `ttlMs`.
 *
 * Deliberately not shared between isolates (the Cache API would cost a round trip per read, which is
 * what this saves), and written here rather than taken from `lru-cache`: a Map with a deadline per
 * entry is all that is needed.
 *
 * @example const keys = new IsolateCache<string, ApiKey>({ ttlMs: 5_000, maxEntries: 10_000 })
 */
export class IsolateCache<K, V> {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();
  readonly #now: () => number;

  constructor(options: { ttlMs: number; maxEntries: number; now?: () => number }) {
    if (!(options.ttlMs > 0)) throw new Error("IsolateCache: ttlMs must be positive");
    if (!(options.maxEntries >= 1)) throw new Error("IsolateCache: maxEntries must be at least 1");
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries;
    this.#now = options.now ?? (() => Date.now());
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt: this.#now() + this.ttlMs });
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Deletes every entry whose value matches (e.g. every secret of one key id). */
  deleteWhere(matches: (value: V) => boolean): void {
    for (const [key, entry] of this.#entries) if (matches(entry.value)) this.#entries.delete(key);
  }
}
