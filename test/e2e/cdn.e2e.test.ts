import { createServer } from "node:http";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCdnUrl } from "../../worker/src/cdn/url-builder";
import { example, newKey, noisePng, serveOrigin, stack, usageOf } from "./helpers";

/**
 * CDN URLs end to end: a customer's page, served from a local origin (plain http on loopback,
 * allowed through ALLOW_INSECURE_ORIGINS as in local development), embeds CDN URLs of its own
 * photo; a browser's requests for them come back from the real runner at x2 and x4 of the photo.
 */
const PHOTO_PATH = "/photos/chelsea.jpg"; // 256x170 JPEG
const BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";

let closeOrigin: () => Promise<void>;
let page = "";
/** More images the origin serves, by path. */
const routes = new Map<string, Buffer>();

/** The customer's site: the photo, and a page that embeds it through the CDN. */
async function startOrigin(): Promise<void> {
  const photo = await example("chelsea");
  const origin = createServer((request, response) => {
    if (request.url === PHOTO_PATH) return void response.writeHead(200, { "content-type": "image/jpeg" }).end(photo);
    if (request.url === "/") return void response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    const image = routes.get(request.url ?? "");
    if (image) return void response.writeHead(200, { "content-type": "image/png" }).end(image);
    response.writeHead(404).end();
  });
  closeOrigin = await serveOrigin(stack.cdnOriginRoute, origin);
}

/** The <img> sources of the page, as a browser would resolve them. */
async function imageSources(): Promise<Record<string, string>> {
  const html = await (await fetch(`${stack.cdnOrigin}/`)).text();
  return Object.fromEntries([...html.matchAll(/<img id="(\w+)" src="([^"]+)"/g)].map(([, id = "", src = ""]) => [id, src.replaceAll("&amp;", "&")]));
}

async function fetchImage(url: string): Promise<{ response: Response; format: string | undefined; width: number | undefined; height: number | undefined }> {
  const response = await fetch(url, { headers: { accept: BROWSER_ACCEPT } });
  expect(response.status, `${url}: ${response.headers.get("x-hvar-cdn")}`).toBe(200);
  const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
  return { response, format: meta.format, width: meta.width, height: meta.height };
}

beforeAll(startOrigin);

afterAll(() => closeOrigin());

describe("a page on a local origin with CDN URLs", () => {
  let keySecret = "";

  beforeAll(async () => {
    const issued = (await newKey({ scopes: ["cdn", "usage"], cdnOrigins: [stack.cdnOrigin] })) as Awaited<ReturnType<typeof newKey>> & { cdnSecret: string };
    keySecret = issued.secret;
    const src = (options: Parameters<typeof buildCdnUrl>[0]["options"]) =>
      buildCdnUrl({
        base: stack.workerUrl,
        keyId: issued.key.id,
        secret: issued.cdnSecret,
        source: `${stack.cdnOrigin}${PHOTO_PATH}`,
        defaultOrigin: stack.cdnOrigin,
        options,
      });
    page = `<!doctype html>
<title>Chelsea</title>
<img id="x2" src="${await src({ scale: 2 })}" alt="x2">
<img id="x4" src="${await src({ scale: 4 })}" alt="x4">
<img id="thumb" src="${await src({ scale: 4, width: 300 })}" alt="fitted">
`;
  });

  it("yields x2 and x4 images of the photo's size times the scale, from the runner", async () => {
    const sources = await imageSources();
    expect(sources.x2).toMatch(new RegExp(`^${stack.workerUrl}/cdn/key_[a-z2-7]{20}/[A-Za-z0-9_-]{43}/scale=2,format=auto,quality=85/photos/chelsea\\.jpg$`));
    const x2 = await fetchImage(sources.x2 ?? "");
    const x4 = await fetchImage(sources.x4 ?? "");
    expect([x2.width, x2.height]).toEqual([512, 340]);
    expect([x4.width, x4.height]).toEqual([1024, 680]);
    // format=auto: the best format the browser accepts, and caches told so.
    expect([x2.format, x2.response.headers.get("content-type"), x2.response.headers.get("vary")]).toEqual(["heif", "image/avif", "Accept"]);
    expect(x2.response.headers.get("x-hvar-cache")).toBe("miss");
  });

  it("fits an image after super-resolution when the URL asks for a width", async () => {
    const thumb = await fetchImage((await imageSources()).thumb ?? "");
    expect([thumb.width, thumb.height]).toEqual([300, 199]);
  });

  it("serves the next view from the cache, billed once and counted", async () => {
    const again = await fetchImage((await imageSources()).x2 ?? "");
    expect(again.response.headers.get("x-hvar-cache")).toBe("hit");
    const usage = await usageOf(keySecret);
    // x2 and x4 ran the model; the fitted x4 came from x4's result, and the second view from the cache.
    expect(usage.buckets[0]).toMatchObject({ jobs: 2, cacheHits: 2 });
    expect(usage.quota.settledMp).toBeCloseTo(2 * 0.04352, 6);
  });
});

describe("three widths of one photo", () => {
  const photo = noisePng(64, 48);

  async function widths(path: string): Promise<{ secret: string; sizes: (number | undefined)[][] }> {
    const issued = (await newKey({ scopes: ["cdn", "usage"], cdnOrigins: [stack.cdnOrigin] })) as Awaited<ReturnType<typeof newKey>> & { cdnSecret: string };
    const source = `${stack.cdnOrigin}${path}`;
    const urls = await Promise.all(
      [100, 200, 300].map((width) => buildCdnUrl({ base: stack.workerUrl, keyId: issued.key.id, secret: issued.cdnSecret, source, options: { scale: 4, width, format: "webp" } })),
    );
    const sizes = [];
    for (const url of urls) {
      const image = await fetchImage(url);
      sizes.push([image.width, image.height]);
    }
    return { secret: issued.secret, sizes };
  }

  it("come from one model run, billed once", async () => {
    routes.set("/photos/noise-a.png", await photo);
    const { secret, sizes } = await widths("/photos/noise-a.png");
    expect(sizes).toEqual([
      [100, 75],
      [200, 150],
      [256, 192],
    ]);
    const usage = await usageOf(secret);
    expect(usage.buckets[0]).toMatchObject({ jobs: 1, cacheHits: 2 });
    expect(usage.quota.settledMp).toBeCloseTo(64 * 48 / 1e6, 6);
  });
});
