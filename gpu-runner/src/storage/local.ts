import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { assertSafeKey, type ObjectStore, type StoredObject } from "./store";

/**
 * A directory as an object store, for the local stack and the CLI: no cloud account needed. Each
 * object is a file with a `.meta.json` sidecar holding its content type. Writes go to a temporary
 * name first and are renamed into place, so a crash never leaves a half-written object behind.
 */
export class LocalStore implements ObjectStore {
  constructor(private readonly root: string) {}

  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    assertSafeKey(key);
    const path = join(this.root, key);
    await mkdir(dirname(path), { recursive: true });
    await writeAtomic(`${path}.meta.json`, JSON.stringify({ contentType }));
    await writeAtomic(path, bytes);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    assertSafeKey(key);
    const path = join(this.root, key);
    try {
      const [bytes, meta] = await Promise.all([readFile(path), readFile(`${path}.meta.json`, "utf8")]);
      const { contentType } = JSON.parse(meta) as { contentType: string };
      return { bytes, contentType };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    const path = join(this.root, key);
    await rm(path, { force: true });
    await rm(`${path}.meta.json`, { force: true });
  }
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}
