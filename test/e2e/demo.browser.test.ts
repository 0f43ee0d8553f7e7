import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { example, noisePng, stack } from "./helpers";

/**
 * The demo page in a real browser, used as a person would: open the link `npm start` prints, upload
 * a photo, wait, see x1, x2 and x4, move the before/after slider, read the usage. Debian's chromium
 * (scripts/setup.sh --browser installs it), driven by playwright-core; never a downloaded browser.
 * HVAR_UPDATE_SCREENSHOT=1 also refreshes the README's screenshot (docs/demo.jpg); with
 * HVAR_MODELS_DIR=$PWD/gpu-runner/models it shows the shipped model rather than the contract fixture.
 */
const CHROMIUM =
  process.env.HVAR_CHROMIUM ??
  (process.env.PATH ?? "/usr/bin")
    .split(":")
    .flatMap((dir) => [join(dir, "chromium"), join(dir, "chromium-browser")])
    .find((path) => existsSync(path));
const OUT = fileURLToPath(new URL("../../test-results/e2e/", import.meta.url));
const DOCS_SCREENSHOT = fileURLToPath(new URL("../../docs/demo.jpg", import.meta.url));
/** The coffee example, 256x171, as a file to pick; no other test sends these bytes (example()), so it is billed, not a cache hit. */
const PHOTO = `${OUT}upload-coffee.jpg`;

let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("no chromium: run `bash scripts/setup.sh --browser` (apt-get install chromium) or set HVAR_CHROMIUM");
  // --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
  await mkdir(OUT, { recursive: true });
  await writeFile(PHOTO, await example("coffee"));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
});

/** The natural sizes of the result images, once all of them have loaded. */
const loadedSizes = () =>
  page.evaluate("[...document.querySelectorAll('#outputs img')].filter((i) => i.complete && i.naturalWidth > 0).map((i) => [i.naturalWidth, i.naturalHeight])");

describe("the demo page", () => {
  it("takes the key from the local link and forgets the link", async () => {
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    await page.goto(`${stack.workerUrl}/demo/#key=${stack.devKey.secret}`);
    await expect.poll(() => page.locator("#key-status").textContent()).toContain(`Key ${stack.devKey.id} accepted`);
    expect(page.url()).toBe(`${stack.workerUrl}/demo/`);
    // For this tab only, as the page and the README say: "remember" is left to the visitor.
    expect(await page.locator("#remember").isChecked()).toBe(false);
    expect(await page.evaluate("[Object.values(sessionStorage).includes(document.querySelector('#key').value), localStorage.length]")).toEqual([true, 0]);
    expect(await page.locator("#usage").textContent()).toContain("MP of 10000 MP");
    expect(errors).toEqual([]);
  });

  it("upscales an uploaded photo: three images at x1, x2 and x4, with signed download links", async () => {
    await page.locator("#file").setInputFiles(PHOTO);
    await expect.poll(() => page.locator("#picked-name").textContent()).toContain("upload-coffee.jpg");
    await page.getByRole("button", { name: "Upscale" }).click();

    await page.getByRole("heading", { name: "Results" }).waitFor({ state: "visible", timeout: 90_000 });
    await expect.poll(loadedSizes, { timeout: 30_000 }).toEqual([
      [256, 171],
      [512, 342],
      [1024, 684],
    ]);
    const links = await page.getByRole("link", { name: /^Download x[124]/ }).evaluateAll((nodes) => nodes.map((node) => node.getAttribute("href") ?? ""));
    expect(links).toHaveLength(3);
    for (const href of links) expect(href).toMatch(/\/v1\/results\/j_[a-z2-7]{20}\/x[124]\.png\?exp=\d+&kid=[\w-]+&sig=[\w-]+$/);
    // The images can finish loading before the page has drawn the comparison and written the status.
    await expect.poll(() => page.locator("#status").textContent()).toMatch(/^Done in [\d.]+ s: 3 images\.$/);
    expect(await page.locator("#error").textContent()).toBe("");
  });

  it("compares x4 with bicubic: the divider follows the pointer and the keyboard", async () => {
    const compare = page.locator("#compare");
    await compare.scrollIntoViewIfNeeded();
    expect(await page.locator("#compare-after").evaluate((canvas) => [canvas.getAttribute("width"), canvas.getAttribute("height")])).toEqual(["1024", "684"]);
    expect(await page.locator("#tag-before").textContent()).toContain("bicubic");

    const box = await compare.boundingBox();
    if (!box) throw new Error("the comparison is not visible");
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    const dragged = Number(await page.locator("#slider").inputValue());
    expect(dragged).toBeGreaterThan(15);
    expect(dragged).toBeLessThan(35);

    await page.locator("#slider").focus();
    await page.keyboard.press("End");
    expect(await page.locator("#slider").inputValue()).toBe("100");
    for (let i = 0; i < 30; i++) await page.keyboard.press("ArrowLeft");
    expect(await page.locator("#slider").inputValue()).toBe("70");
    expect(await compare.evaluate((node) => node.getAttribute("style"))).toContain("--pos: 70%");
  });

  it("gives an example photo a working CDN URL (the uploaded one has none)", async () => {
    expect(await page.locator("#cdn").textContent()).toContain("Your upload has no URL of its own");
    await page.getByRole("button", { name: "Rocket" }).click();
    await expect.poll(() => page.locator("#picked-name").textContent()).toContain("rocket.jpg");
    await page.getByRole("button", { name: "Upscale" }).click();
    // The status (reset by the click) and not the summary, which still describes the previous 256×171 photo.
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 90_000 }).toMatch(/^Done in [\d.]+ s: 3 images\.$/);
    expect(await page.locator("#summary").textContent()).toMatch(/256×171 JPEG in/);

    const href = await page.locator("#cdn-link").getAttribute("href");
    expect(href).toMatch(new RegExp(`^${stack.workerUrl}/cdn/${stack.devKey.id}/unsigned/scale=4,format=auto/url:[\\w-]+$`));
    const response = await fetch(href ?? "", { headers: { accept: "image/webp,image/*" } });
    expect(response.status).toBe(200);
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["webp", 1024, 684]);
  });

  it("shows the usage the jobs added, and saves a screenshot", async () => {
    // The uploaded photo and the rocket (256x171 each), and the rocket once more through the CDN.
    await page.getByRole("button", { name: "Use this key" }).click();
    await expect.poll(() => page.locator("#usage").textContent()).toContain("0.1313 MP of 10000 MP");
    await page.locator("#slider").fill("50");
    await page.locator("#slider").dispatchEvent("input");
    await page.screenshot({ path: `${OUT}demo.png`, fullPage: true });
    if (process.env.HVAR_UPDATE_SCREENSHOT) {
      await sharp(`${OUT}demo.png`).resize({ width: 1000 }).jpeg({ quality: 80, mozjpeg: true }).toFile(DOCS_SCREENSHOT);
    }
  });

  it("shows the runner's progress in tiles while a large photo is upscaled", async () => {
    // Noise, so that every tile is work: seconds on the CPU runner, long enough to watch.
    const large = `${OUT}noise-1024.png`;
    await sharp(await noisePng(1024, 1024)).toFile(large);
    await page.locator("#file").setInputFiles(large);
    await page.locator('input[name="scale"][value="1"]').uncheck();
    await page.locator('input[name="scale"][value="4"]').uncheck();
    await page.locator("#format").selectOption("jpeg");
    await page.getByRole("button", { name: "Upscale" }).click();
    await expect.poll(() => page.locator("#progress-label").textContent(), { timeout: 60_000, interval: 50 }).toMatch(/^Upscaling on the runner: \d+ of \d+ tiles \d+%/);
    // A determinate bar: its value is the fraction done, in percent.
    expect(await page.locator("#progress").getAttribute("value")).toMatch(/^\d+(\.\d+)?$/);
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 120_000 }).toMatch(/^Done in [\d.]+ s: 1 images\.$/);
  });

  it("offers generated detail beside the before/after slider only where the served model samples", async () => {
    const response = await fetch(`${stack.workerUrl}/v1/model`, { headers: { authorization: `Bearer ${stack.devKey.secret}` } });
    const served = (await response.json()) as { detail: { sampling: boolean } };
    expect(await page.locator("#results").locator("#detail, #redraw").count()).toBe(2);
    await expect.poll(() => page.locator("#detail").isEnabled()).toBe(served.detail.sampling);
    expect(await page.locator("#redraw").isEnabled()).toBe(served.detail.sampling);
    if (!served.detail.sampling) {
      expect(await page.locator("#detail-help").textContent()).toContain("restoration stage alone");
    }
  });

  it("redraws the image at the temperature chosen beside the slider", async ({ skip }) => {
    const response = await fetch(`${stack.workerUrl}/v1/model`, { headers: { authorization: `Bearer ${stack.devKey.secret}` } });
    if (!((await response.json()) as { detail: { sampling: boolean } }).detail.sampling) skip("the served model draws no generated detail");
    await page.locator("#file").setInputFiles(PHOTO);
    await page.getByRole("button", { name: "Upscale" }).click();
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: 120_000 }).toContain("256×171");
    await page.locator("#detail").fill("1.5");
    expect(await page.locator("#detail-value").textContent()).toBe("1.5");
    const submitted = page.waitForRequest((request) => request.method() === "POST" && request.url().includes("/v1/upscales?"));
    await page.getByRole("button", { name: "Redraw at this temperature" }).click();
    expect(new URL((await submitted).url()).searchParams.get("temperature")).toBe("1.5");
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: 120_000 }).toContain("generated detail at temperature 1.5");
  });
});

describe("the clean-up control", () => {
  it("is offered where the served model takes a clean-up strength, starts at its default, and sends the strength chosen", async () => {
    const response = await fetch(`${stack.workerUrl}/v1/model`, { headers: { authorization: `Bearer ${stack.devKey.secret}` } });
    const served = (await response.json()) as { cleanup: { adjustable: boolean; default: number | "auto" } };
    await expect.poll(() => page.locator("#cleanup-auto").isEnabled()).toBe(served.cleanup.adjustable);
    if (!served.cleanup.adjustable) {
      expect(await page.locator("#cleanup-help").textContent()).toContain("always cleans fully");
      return;
    }
    expect(await page.locator("#cleanup-auto").isChecked()).toBe(served.cleanup.default === "auto");
    expect(await page.locator("#cleanup-value").textContent()).toBe(String(served.cleanup.default));
    await page.locator("#cleanup-auto").uncheck();
    await page.locator("#cleanup").fill("0.3");
    expect(await page.locator("#cleanup-value").textContent()).toBe("0.3");
    await page.locator("#file").setInputFiles(PHOTO);
    const submitted = page.waitForRequest((request) => request.method() === "POST" && request.url().includes("/v1/upscales?"));
    await page.getByRole("button", { name: "Upscale" }).click();
    expect(new URL((await submitted).url()).searchParams.get("cleanup")).toBe("0.3");
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: 120_000 }).toContain("clean-up 0.3,");
  });
});

describe("the API reference", () => {
  it("renders the OpenAPI document in the browser with everything from this origin", async () => {
    const reference = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    reference.on("request", (request) => requests.push(request.url()));
    reference.on("pageerror", (error) => errors.push(error.message));
    reference.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    await reference.goto(`${stack.workerUrl}/docs`);
    await reference.getByText("Upscale an image to x1 (cleaned), x2 and/or x4").first().waitFor({ timeout: 30_000 });
    await reference.getByRole("heading", { name: "hvar API" }).waitFor();
    expect(requests.filter((url) => !url.startsWith(`${stack.workerUrl}/`) && !url.startsWith("data:"))).toEqual([]);
    expect(requests).toEqual(expect.arrayContaining([`${stack.workerUrl}/docs/scalar.js`, `${stack.workerUrl}/openapi.json`]));
    expect(errors).toEqual([]);
    await reference.close();
  });
});
