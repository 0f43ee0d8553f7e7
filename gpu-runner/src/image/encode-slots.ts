import pLimit from "p-limit";
import sharp from "sharp";
import { CPUS } from "../cpus";

/** libuv's thread pool: UV_THREADPOOL_SIZE, read once when Node first uses it (4 when unset; gpu-runner/bin/uv-threads.cjs). */
export const UV_THREADS = poolSize(process.env.UV_THREADPOOL_SIZE);

/**
 * sharp encodes on libuv's thread pool, where Node also reads and writes files and looks up host
 * names, and an encode holds its thread for the whole image: a 1920x1080 x4 AVIF takes seconds. With
 * as many encodes as threads, a job record's write or a storage host's lookup waited for one of them
 * to end (`npm run bench:encoders`, "a file read meanwhile"). Encoding, the alpha plane's upscaling
 * included, takes at most all but two of the pool's threads; decoding an upload, bounded by the input
 * limit, is not held back.
 */
export const encodeSlots = pLimit(Math.max(1, UV_THREADS - 2));

/**
 * libvips' threads per image, which AVIF's encoder works with too: sharp's default is one on glibc
 * (against memory fragmentation). Two encode a 1920x1080 AVIF 1.6x sooner for 10% more CPU, and WebP
 * and JPEG, whose encoders are single-threaded, 0-10% later (`npm run bench:encoders`): worth it for AVIF,
 * the format browsers get by default and by far the slowest. More than two is untried (a 2-core machine).
 */
export const VIPS_THREADS = Math.min(2, CPUS);
sharp.concurrency(VIPS_THREADS);

function poolSize(value: string | undefined): number {
  const size = Number(value);
  return Number.isInteger(size) && size >= 1 && size <= 1024 ? size : 4;
}
