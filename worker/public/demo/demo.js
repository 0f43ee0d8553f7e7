// @ts-check
/**
 * The hvar demo page: pick or drop a photo, upscale it through the public API (POST /v1/upscales,
 * then GET /v1/upscales/{id} until it ends, with its progress in tiles), show x1, x2 and x4 with their signed download URLs,
 * compare one against bicubic interpolation computed here in the browser, and show the key's usage.
 * No framework and no build step; type-checked by `tsc -p worker/tsconfig.demo.json`.
 *
 * The API key never comes from the server: it is pasted in (kept in sessionStorage, or in
 * localStorage with "remember"), or, on a local stack only, taken from the URL fragment of the link
 * that `npm start` prints (`/demo/#key=...`; browsers never send fragments to servers).
 */

/**
 * @typedef {{ scale: number, url: string, contentType: string, width: number, height: number, bytes: number }} Output
 * @typedef {{ tilesDone: number, tilesTotal: number, fraction: number }} Progress
 * @typedef {{
 *   id: string, status: "queued" | "running" | "succeeded" | "failed" | "canceled", createdAt: string,
 *   model: { id: string, version: string } | null,
 *   options: { scales: number[], format: string, quality: number | null, temperature: number, cleanup: number | "auto" },
 *   cleanupApplied?: number,
 *   input: { width: number, height: number, type: string, megapixels: number },
 *   progress?: Progress, outputs?: Output[], urlsExpireAt?: string,
 *   usage: { inputMp: number, cacheHit: boolean, billable: boolean },
 *   error?: { code: string, title: string }
 * }} Job
 * @typedef {{ type?: string, title?: string, status?: number, detail?: string, code?: string }} Problem
 * @typedef {{ period: string, billableMp: number, outputMp: number, jobs: number, cacheHits: number, runnerMs: number }} Bucket
 * @typedef {{ version: string, scales: number[], detail: { sampling: boolean }, cleanup: { adjustable: boolean, default: number | "auto" } }} ServedModel
 * @typedef {{ keyId: string, from: string, to: string,
 *   quota: { period: string, monthlyQuotaMp: number, settledMp: number, reservedMp: number }, buckets: Bucket[] }} Usage
 */

const POLL_MS = 500;
/** The comparison shows a centre crop of at most this many input pixels a side, at 100%. */
const COMPARE_SIDE = 256;
const KEY_ITEM = "hvar-demo-key";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing`);
  return node;
}

const ui = {
  keyForm: byId("key-form", HTMLFormElement),
  key: byId("key", HTMLInputElement),
  remember: byId("remember", HTMLInputElement),
  keyStatus: byId("key-status", HTMLElement),
  drop: byId("drop", HTMLElement),
  file: byId("file", HTMLInputElement),
  picked: byId("picked", HTMLElement),
  preview: byId("preview", HTMLImageElement),
  pickedName: byId("picked-name", HTMLElement),
  runForm: byId("run-form", HTMLFormElement),
  format: byId("format", HTMLSelectElement),
  detail: byId("detail", HTMLInputElement),
  detailValue: byId("detail-value", HTMLOutputElement),
  detailHelp: byId("detail-help", HTMLElement),
  redraw: byId("redraw", HTMLButtonElement),
  cleanupAuto: byId("cleanup-auto", HTMLInputElement),
  cleanup: byId("cleanup", HTMLInputElement),
  cleanupValue: byId("cleanup-value", HTMLOutputElement),
  cleanupHelp: byId("cleanup-help", HTMLElement),
  run: byId("run", HTMLButtonElement),
  progressBox: byId("progress-box", HTMLElement),
  progressLabel: byId("progress-label", HTMLElement),
  progress: byId("progress", HTMLProgressElement),
  status: byId("status", HTMLElement),
  error: byId("error", HTMLElement),
  results: byId("results", HTMLElement),
  resultsHeading: byId("results-heading", HTMLElement),
  summary: byId("summary", HTMLElement),
  outputs: byId("outputs", HTMLElement),
  compareScales: byId("compare-scales", HTMLFieldSetElement),
  compareNote: byId("compare-note", HTMLElement),
  compare: byId("compare", HTMLElement),
  before: byId("compare-before", HTMLCanvasElement),
  after: byId("compare-after", HTMLCanvasElement),
  tagBefore: byId("tag-before", HTMLElement),
  tagAfter: byId("tag-after", HTMLElement),
  slider: byId("slider", HTMLInputElement),
  sliderBefore: byId("slider-before", HTMLElement),
  cdn: byId("cdn", HTMLElement),
  usage: byId("usage", HTMLElement),
};

/**
 * @type {{ key: string | null, keyId: string | null, image: Blob | null, name: string, example: string | null,
 *   previewUrl: string | null, job: Job | null, images: Map<number, HTMLImageElement> }}
 */
const state = { key: null, keyId: null, image: null, name: "", example: null, previewUrl: null, job: null, images: new Map() };

// ---------------------------------------------------------------------------------------- key

function loadKey() {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (match?.[1]) {
    // Drop the key from the address bar (and from history) at once, whatever happens next.
    history.replaceState(null, "", location.pathname + location.search);
    if (LOOPBACK.has(location.hostname)) {
      // Kept for this tab only, like a pasted key: "remember" stays the visitor's choice.
      setKey(decodeURIComponent(match[1]), false);
      return;
    }
    ui.keyStatus.textContent = "A key in the link is only accepted on a local stack; paste it instead.";
  }
  const stored = sessionStorage.getItem(KEY_ITEM) ?? localStorage.getItem(KEY_ITEM);
  if (stored) setKey(stored, localStorage.getItem(KEY_ITEM) !== null);
}

/** @param {string} key @param {boolean} remember */
function setKey(key, remember) {
  state.key = key.trim() || null;
  ui.key.value = state.key ?? "";
  ui.remember.checked = remember;
  sessionStorage.removeItem(KEY_ITEM);
  localStorage.removeItem(KEY_ITEM);
  if (state.key) (remember ? localStorage : sessionStorage).setItem(KEY_ITEM, state.key);
  void refreshUsage();
  void refreshModel();
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setKey(ui.key.value, ui.remember.checked);
});

// ---------------------------------------------------------------------------------------- API

/** @param {string} path @param {RequestInit} [init] */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (state.key) headers.set("authorization", `Bearer ${state.key}`);
  const response = await fetch(path, { ...init, headers });
  const body = /** @type {unknown} */ (await response.json().catch(() => null));
  if (!response.ok) throw problemError(response.status, body);
  return body;
}

/** @param {number} status @param {unknown} body */
function problemError(status, body) {
  const problem = /** @type {Problem} */ (body && typeof body === "object" ? body : {});
  const error = new Error(`${problem.title ?? `HTTP ${status}`}${problem.detail ? `: ${problem.detail}` : ""}`);
  error.name = problem.code ?? `http_${status}`;
  return error;
}

/**
 * POST /v1/upscales with XMLHttpRequest, which (unlike fetch) reports upload progress.
 * @param {Blob} image @param {string} query @param {(fraction: number) => void} onProgress
 * @returns {Promise<Job>}
 */
function submit(image, query, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/upscales?${query}`);
    xhr.setRequestHeader("authorization", `Bearer ${state.key ?? ""}`);
    xhr.setRequestHeader("content-type", image.type || "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(/** @type {Job} */ (xhr.response));
      else reject(problemError(xhr.status, xhr.response));
    });
    xhr.addEventListener("error", () => reject(new Error("The API could not be reached")));
    xhr.send(image);
  });
}

// -------------------------------------------------------------------------------------- image

/** @param {Blob} image @param {string} name @param {string | null} [example] the example's URL on this site */
function setImage(image, name, example = null) {
  state.image = image;
  state.name = name;
  state.example = example;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(image);
  ui.preview.src = state.previewUrl;
  ui.preview.alt = `The selected image, ${name}`;
  ui.pickedName.textContent = `${name} (${formatBytes(image.size)})`;
  ui.picked.hidden = false;
  for (const button of document.querySelectorAll("[data-example]")) {
    button.setAttribute("aria-pressed", String(button.getAttribute("data-example") === name));
  }
}

ui.file.addEventListener("change", () => {
  const file = ui.file.files?.[0];
  if (file) setImage(file, file.name);
});

for (const type of ["dragenter", "dragover"]) {
  ui.drop.addEventListener(type, (event) => {
    event.preventDefault();
    ui.drop.classList.add("over");
  });
}
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.drop.classList.remove("over");
  const file = event.dataTransfer?.files[0];
  if (file) setImage(file, file.name);
});

for (const button of document.querySelectorAll("[data-example]")) {
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", async () => {
    const name = button.getAttribute("data-example") ?? "";
    const url = new URL(`examples/${encodeURIComponent(name)}`, location.href);
    const response = await fetch(url);
    if (response.ok) setImage(await response.blob(), name, url.href);
  });
}

// ---------------------------------------------------------------------------------------- model

/**
 * The detail control sits beside the before/after slider, where its effect shows: the first run is
 * greedy (temperature 0, the API's default), and "Redraw" runs the image again at the chosen
 * temperature. It is offered only where it changes the pictures: a model that samples generated
 * detail (GET /v1/model). The restoration stage alone is deterministic, and the API would drop the
 * temperature anyway (the job's options show 0).
 */
async function refreshModel() {
  if (!state.key) return;
  try {
    const model = /** @type {ServedModel} */ (await api("/v1/model"));
    ui.detail.disabled = !model.detail.sampling;
    ui.redraw.disabled = ui.detail.disabled;
    ui.cleanupAuto.disabled = !model.cleanup.adjustable;
    ui.cleanupAuto.checked = model.cleanup.default === "auto";
    if (model.cleanup.default !== "auto") ui.cleanup.value = String(model.cleanup.default);
    showCleanup();
    ui.cleanupHelp.textContent = model.cleanup.adjustable
      ? "How strongly x1 cleans noise, blur and JPEG blocks before upscaling: 1 for a badly damaged photo, about 0.5 for an ordinary JPEG, 0 for a clean original whose grain and fine texture should stay. Auto (the default) reads the photo's noise and, for a JPEG, the quality it was saved at: 1 for a noisy photo, 0.5 for a JPEG of quality 90-94, 0.25 from 95, 0.75 for any other."
      : `${model.version} always cleans fully: it has no clean-up setting.`;
    ui.detailHelp.textContent = model.detail.sampling
      ? `${model.version} draws detail the input cannot show: 0 is greedy (the same pixels every time); higher temperatures draw livelier, less faithful detail.`
      : `${model.version} is the restoration stage alone: deterministic, with no generated detail to draw, so there is no temperature to choose.`;
  } catch (error) {
    ui.detail.disabled = ui.redraw.disabled = ui.cleanup.disabled = ui.cleanupAuto.disabled = true;
    ui.cleanupHelp.textContent = "";
    ui.detailHelp.textContent = `The served model could not be read: ${error instanceof Error ? error.message : String(error)}`;
  }
}

ui.detail.addEventListener("input", () => {
  ui.detailValue.value = ui.detail.value;
});
ui.redraw.addEventListener("click", () => void upscale());
ui.cleanup.addEventListener("input", () => showCleanup());
ui.cleanupAuto.addEventListener("change", () => showCleanup());

/** The slider applies only where the model takes a strength and Auto is off. */
function showCleanup() {
  ui.cleanup.disabled = ui.cleanupAuto.disabled || ui.cleanupAuto.checked;
  ui.cleanupValue.value = ui.cleanupAuto.disabled ? "1" : ui.cleanupAuto.checked ? "auto" : ui.cleanup.value;
}

// ---------------------------------------------------------------------------------------- run

ui.runForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void upscale();
});

async function upscale() {
  ui.error.textContent = "";
  const scales = [...ui.runForm.querySelectorAll('input[name="scale"]:checked')].map((input) => /** @type {HTMLInputElement} */ (input).value);
  if (!state.key) return fail("Enter an API key first (step 1).");
  if (!state.image) return fail("Pick an image or an example first (step 2).");
  if (scales.length === 0) return fail("Choose at least one scale.");

  const started = performance.now();
  ui.run.disabled = true;
  ui.results.hidden = true;
  showProgress("Uploading", 0);
  try {
    const query = new URLSearchParams({ scales: scales.join(","), format: ui.format.value });
    if (!ui.detail.disabled) query.set("temperature", ui.detail.value);
    if (!ui.cleanupAuto.disabled) query.set("cleanup", ui.cleanupAuto.checked ? "auto" : ui.cleanup.value);
    let job = await submit(state.image, query.toString(), (fraction) => showProgress("Uploading", fraction));
    while (job.status === "queued" || job.status === "running") {
      showProgress(...runnerProgress(job), started);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      job = /** @type {Job} */ (await api(`/v1/upscales/${encodeURIComponent(job.id)}`));
    }
    if (job.status === "failed") {
      throw Object.assign(new Error(`The job failed: ${job.error?.title ?? "unknown error"}`), { name: job.error?.code ?? "job_failed" });
    }
    if (job.status === "canceled") throw Object.assign(new Error("The job was canceled"), { name: "job_canceled" });
    showProgress("Loading the results", 1);
    await showResults(job, (performance.now() - started) / 1000);
    ui.status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${job.outputs?.length ?? 0} images.`;
  } catch (error) {
    fail(error instanceof Error ? `${error.message} (${error.name})` : String(error));
  } finally {
    ui.progressBox.hidden = true;
    ui.run.disabled = false;
    void refreshUsage();
  }
}

/**
 * What the job is doing on the runner: the tiles through the model so far, once the runner counts
 * them (a determinate bar), else only whether it waits or runs.
 * @param {Job} job @returns {[string, number | null]}
 */
function runnerProgress(job) {
  const progress = job.progress;
  if (progress && progress.tilesTotal > 0) return [`Upscaling on the runner: ${progress.tilesDone} of ${progress.tilesTotal} tiles`, progress.fraction];
  return [job.status === "queued" ? "Waiting for a runner" : "Upscaling on the runner", null];
}

/** @param {string} message */
function fail(message) {
  ui.status.textContent = "";
  ui.error.textContent = message;
}

/** @param {string} label @param {number | null} fraction null: indeterminate @param {number} [since] */
function showProgress(label, fraction, since) {
  ui.progressBox.hidden = false;
  const elapsed = since === undefined ? "" : ` (${((performance.now() - since) / 1000).toFixed(1)} s)`;
  ui.progressLabel.textContent = `${label}${fraction === null ? "" : ` ${Math.round(fraction * 100)}%`}${elapsed}`;
  if (fraction === null) ui.progress.removeAttribute("value");
  else ui.progress.value = fraction * 100;
  ui.status.textContent = label;
}

// ------------------------------------------------------------------------------------ results

/** @param {Job} job @param {number} seconds */
async function showResults(job, seconds) {
  state.job = job;
  state.images.clear();
  const outputs = [...(job.outputs ?? [])].sort((a, b) => a.scale - b.scale);
  const base = state.name.replace(/\.[^.]*$/, "") || "image";
  ui.outputs.replaceChildren(
    ...outputs.map((output) => {
      const figure = document.createElement("figure");
      const image = document.createElement("img");
      image.src = output.url;
      image.width = output.width;
      image.height = output.height;
      image.alt = `x${output.scale} output, ${output.width} by ${output.height} pixels`;
      image.dataset.scale = String(output.scale);
      state.images.set(output.scale, image);
      const caption = document.createElement("figcaption");
      const title = document.createElement("strong");
      title.textContent = output.scale === 1 ? "x1 (cleaned)" : `x${output.scale}`;
      const ext = output.contentType.split("/")[1] ?? "img";
      const link = document.createElement("a");
      link.href = output.url;
      link.download = `${base}-x${output.scale}.${ext}`;
      link.textContent = `Download x${output.scale} (signed URL)`;
      caption.append(title, ` · ${output.width}×${output.height} · ${ext.toUpperCase()} · ${formatBytes(output.bytes)}`, document.createElement("br"), link);
      figure.append(image, caption);
      return figure;
    }),
  );
  const model = job.model ? `${job.model.id} ${job.model.version}` : "unknown model";
  const billing = job.usage.cacheHit ? "served from the cache, not billed" : `${job.usage.inputMp} MP billed`;
  const expires = job.urlsExpireAt ? `; the URLs work until ${new Date(job.urlsExpireAt).toLocaleString()}` : "";
  const detail = ui.detail.disabled ? "" : `, generated detail at temperature ${job.options.temperature}`;
  const applied = job.options.cleanup === "auto" && job.cleanupApplied !== undefined ? ` (${job.cleanupApplied})` : "";
  const cleanup = ui.cleanupAuto.disabled ? "" : `, clean-up ${job.options.cleanup}${applied}`;
  ui.summary.textContent = `Job ${job.id}: ${job.input.width}×${job.input.height} ${job.input.type.toUpperCase()} in, ${model}${detail}${cleanup}, ${seconds.toFixed(1)} s, ${billing}${expires}.`;
  renderCdn(job);
  ui.results.hidden = false;
  await Promise.all([...state.images.values()].map((image) => image.decode().catch(() => undefined)));
  await buildCompareChoices(outputs.map((o) => o.scale));
  ui.resultsHeading.focus();
}

/**
 * The CDN URL of this image (worker/src/cdn/grammar.ts): `/cdn/<key id>/<signature>/<options>/<source>`,
 * which serves the upscaled image from the edge for `<img src>`, fetching the source from one of
 * the key's CDN origins. Only an image with a URL can have one: the example photos (on this site).
 * This page holds no CDN secret, so it writes the `unsigned` form, which works for keys that allow
 * it (the local development key does); production URLs are signed on a server with `buildCdnUrl`.
 * @param {Job} job
 */
function renderCdn(job) {
  const scale = Math.max(...job.options.scales);
  const options = `scale=${scale},format=auto`;
  const keyId = state.keyId ?? "<key id>";
  const help = document.createElement("p");
  help.className = "help";
  if (!state.example) {
    help.textContent =
      `Your upload has no URL of its own, so it has no CDN URL. An image at one of your key's CDN origins, e.g. ` +
      `https://photos.example.com/cat.jpg, is served upscaled from the edge at /cdn/${keyId}/<signature>/${options}/url:<base64url of its URL> ` +
      `(signed on your server with buildCdnUrl and the key's CDN secret; never in a browser). Try an example photo to see a working one.`;
    ui.cdn.replaceChildren(help);
    return;
  }
  const url = `${location.origin}/cdn/${keyId}/unsigned/${options}/url:${base64Url(state.example)}`;
  const code = document.createElement("code");
  code.id = "cdn-url";
  code.textContent = url;
  const link = document.createElement("a");
  link.id = "cdn-link";
  link.href = url;
  link.textContent = `Open x${scale} through the CDN`;
  help.textContent =
    `The same photo, x${scale}, for <img src>: the worker fetches ${state.example} (a listed CDN origin of this key), upscales it once, ` +
    `then serves it from the edge cache. Written unsigned, which only keys with cdnAllowUnsigned accept (the local development key does); ` +
    `elsewhere sign CDN URLs on your server with buildCdnUrl and the key's CDN secret. New images are billed like an upscale; cache hits are free.`;
  const line = document.createElement("p");
  line.append(code, " ", link);
  ui.cdn.replaceChildren(line, help);
}

/** @param {string} text */
function base64Url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// ------------------------------------------------------------------------------------ compare

/** @param {number[]} scales */
async function buildCompareChoices(scales) {
  ui.compareScales.querySelectorAll("label").forEach((label) => label.remove());
  const initial = Math.max(...scales);
  for (const scale of scales) {
    const label = document.createElement("label");
    label.className = "inline";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "compare-scale";
    radio.value = String(scale);
    radio.checked = scale === initial;
    radio.addEventListener("change", () => void drawCompare(scale));
    label.append(radio, scale === 1 ? " x1 against the original" : ` x${scale} against bicubic`);
    ui.compareScales.append(label);
  }
  await drawCompare(initial);
}

/** @param {number} scale */
async function drawCompare(scale) {
  const output = state.images.get(scale);
  if (!state.image || !output) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(state.image);
  } catch {
    ui.compareNote.textContent = "This browser cannot decode the uploaded image, so there is nothing to compare against.";
    ui.compare.hidden = true;
    return;
  }
  ui.compare.hidden = false;
  const { width, height } = bitmap;
  const cw = Math.min(width, COMPARE_SIDE);
  const ch = Math.min(height, COMPARE_SIDE);
  const cx = Math.floor((width - cw) / 2);
  const cy = Math.floor((height - ch) / 2);

  // The source crop with a 2-pixel margin (the bicubic kernel's reach), clamped to the image.
  const mx0 = Math.max(0, cx - 2);
  const my0 = Math.max(0, cy - 2);
  const mx1 = Math.min(width, cx + cw + 2);
  const my1 = Math.min(height, cy + ch + 2);
  const source = new OffscreenCanvas(mx1 - mx0, my1 - my0).getContext("2d");
  if (!source) return;
  source.drawImage(bitmap, -mx0, -my0);
  const pixels = source.getImageData(0, 0, mx1 - mx0, my1 - my0);
  bitmap.close();

  const before = bicubic(pixels, scale, { x: cx - mx0, y: cy - my0, width: cw, height: ch });
  for (const canvas of [ui.before, ui.after]) {
    canvas.width = cw * scale;
    canvas.height = ch * scale;
  }
  ui.before.getContext("2d")?.putImageData(before, 0, 0);
  ui.after.getContext("2d")?.drawImage(output, cx * scale, cy * scale, cw * scale, ch * scale, 0, 0, cw * scale, ch * scale);

  const what = scale === 1 ? "the original upload" : "bicubic";
  ui.tagBefore.textContent = scale === 1 ? "original" : "bicubic (in your browser)";
  ui.tagAfter.textContent = `hvar x${scale}`;
  ui.sliderBefore.textContent = what;
  ui.before.setAttribute("aria-label", scale === 1 ? "The original upload" : `Bicubic x${scale}, computed in the browser`);
  ui.after.setAttribute("aria-label", `hvar x${scale} output`);
  const crop = cw < width || ch < height ? `the centre ${cw}×${ch} input pixels` : "the whole image";
  ui.compareNote.textContent =
    scale === 1
      ? `At 100%, ${crop}: left of the divider the original upload, right hvar's x1 (cleaned). Move the slider or use the arrow keys.`
      : `At 100%, ${crop}: left of the divider bicubic interpolation (Keys' cubic, a = −0.5) computed in this browser from your upload, right hvar's x${scale}. Move the slider or use the arrow keys.`;
}

/**
 * Bicubic upscaling (Keys' cubic convolution, a = -0.5, edges clamped), separable, of the region
 * `crop` of `image`; the pixels around the region are the kernel's support.
 * @param {ImageData} image @param {number} scale
 * @param {{ x: number, y: number, width: number, height: number }} crop
 * @returns {ImageData}
 */
function bicubic(image, scale, crop) {
  const { width: sw, height: sh, data: src } = image;
  const dw = crop.width * scale;
  const dh = crop.height * scale;
  /** @param {number} t */
  const kernel = (t) => {
    const a = -0.5;
    const x = Math.abs(t);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
  };
  /** Taps and weights along one axis: destination i reads source floor(u) - 1 .. floor(u) + 2. */
  const taps = (/** @type {number} */ count, /** @type {number} */ offset, /** @type {number} */ limit) => {
    const index = new Int32Array(count * 4);
    const weight = new Float32Array(count * 4);
    for (let i = 0; i < count; i++) {
      const u = (i + 0.5) / scale - 0.5 + offset;
      const base = Math.floor(u);
      for (let k = 0; k < 4; k++) {
        const s = base - 1 + k;
        index[i * 4 + k] = Math.min(limit - 1, Math.max(0, s));
        weight[i * 4 + k] = kernel(u - s);
      }
    }
    return { index, weight };
  };
  const tx = taps(dw, crop.x, sw);
  const ty = taps(dh, crop.y, sh);
  // Horizontal pass over every source row, then the vertical pass.
  const mid = new Float32Array(dw * sh * 4);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < dw; x++) {
      for (let c = 0; c < 4; c++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += (src[(y * sw + (tx.index[x * 4 + k] ?? 0)) * 4 + c] ?? 0) * (tx.weight[x * 4 + k] ?? 0);
        mid[(y * dw + x) * 4 + c] = sum;
      }
    }
  }
  const out = new ImageData(dw, dh);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      for (let c = 0; c < 4; c++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += (mid[((ty.index[y * 4 + k] ?? 0) * dw + x) * 4 + c] ?? 0) * (ty.weight[y * 4 + k] ?? 0);
        out.data[(y * dw + x) * 4 + c] = sum; // Uint8ClampedArray rounds and clamps
      }
    }
  }
  return out;
}

/** @param {number} percent */
function setDivider(percent) {
  const value = Math.min(100, Math.max(0, percent));
  ui.compare.style.setProperty("--pos", `${value}%`);
  ui.slider.value = String(value);
}

ui.slider.addEventListener("input", () => setDivider(Number(ui.slider.value)));
ui.compare.addEventListener("pointerdown", (event) => {
  ui.compare.setPointerCapture(event.pointerId);
  follow(event);
});
ui.compare.addEventListener("pointermove", (event) => {
  if (ui.compare.hasPointerCapture(event.pointerId)) follow(event);
});
/** @param {PointerEvent} event */
function follow(event) {
  const box = ui.after.getBoundingClientRect();
  setDivider(((event.clientX - box.left) / box.width) * 100);
}

// -------------------------------------------------------------------------------------- usage

async function refreshUsage() {
  if (!state.key) {
    ui.keyStatus.textContent = "";
    return;
  }
  try {
    const usage = /** @type {Usage} */ (await api("/v1/usage?granularity=day"));
    state.keyId = usage.keyId;
    ui.keyStatus.textContent = `Key ${usage.keyId} accepted.`;
    renderUsage(usage);
  } catch (error) {
    ui.keyStatus.textContent = error instanceof Error ? `This key does not work: ${error.message}` : "This key does not work.";
    ui.usage.replaceChildren();
  }
}

/** @param {Usage} usage */
function renderUsage(usage) {
  const { quota } = usage;
  const list = document.createElement("dl");
  /** @param {string} term @param {string} value */
  const add = (term, value) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  };
  add("Key", usage.keyId);
  add(`Used in ${quota.period}`, `${round(quota.settledMp)} MP of ${round(quota.monthlyQuotaMp)} MP (input megapixels)`);
  add("Held by running jobs", `${round(quota.reservedMp)} MP`);
  const table = document.createElement("table");
  const caption = table.createCaption();
  caption.textContent = `By day, ${usage.from} to ${usage.to}`;
  const head = table.createTHead().insertRow();
  for (const name of ["Day", "Billed MP", "Jobs", "Cache hits", "Runner time"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  for (const bucket of usage.buckets) {
    const row = body.insertRow();
    for (const value of [bucket.period, round(bucket.billableMp), bucket.jobs, bucket.cacheHits, `${(bucket.runnerMs / 1000).toFixed(1)} s`]) {
      row.insertCell().textContent = String(value);
    }
  }
  if (usage.buckets.length === 0) body.insertRow().insertCell().textContent = "No jobs yet.";
  ui.usage.replaceChildren(list, table);
}

// -------------------------------------------------------------------------------------- utils

/** @param {number} value */
const round = (value) => String(Math.round(value * 10_000) / 10_000);

/** @param {number} bytes */
function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

loadKey();
