import type { ServedModel, Upscale, UpscaleList, Usage } from "../../client/src/index.js";

/** What the commands print for people (--json prints the API's own JSON instead). */

const megapixels = (mp: number) => `${Number(mp.toFixed(3))} MP`;

/** One job, a few lines: id, status, input, each output with its size and signed URL, error, usage. */
export function renderJob(job: Upscale): string {
  const lines = [
    `${job.id}  ${job.status}  ${job.createdAt}`,
    `  input   ${job.input.width}x${job.input.height} ${job.input.type} (${megapixels(job.input.megapixels)})`,
    `  options scales ${job.options.scales.join(",")}, ${job.options.format}${job.options.quality === null ? "" : ` quality ${job.options.quality}`}, ${cleanupOf(job)}${job.model ? `, model ${job.model.id} ${job.model.version}` : ""}`,
  ];
  if (job.progress && (job.status === "queued" || job.status === "running")) lines.push(`  progress ${job.progress.tilesDone}/${job.progress.tilesTotal} tiles`);
  for (const output of job.outputs ?? []) lines.push(`  x${output.scale}      ${output.width}x${output.height} ${output.contentType} ${output.url}`);
  if (job.urlsExpireAt) lines.push(`  urls expire ${job.urlsExpireAt}`);
  if (job.error) lines.push(`  error   ${job.error.code}: ${job.error.title}`);
  lines.push(`  billed  ${megapixels(job.usage.billedMp)}${job.usage.cacheHit ? " (cache hit)" : ""}`);
  return `${lines.join("\n")}\n`;
}

/** `clean-up auto (1)`: the strength asked for, and the one the model applied where auto chose it. */
function cleanupOf(job: Upscale): string {
  const applied = job.options.cleanup === "auto" && job.cleanupApplied !== undefined ? ` (${job.cleanupApplied})` : "";
  return `clean-up ${job.options.cleanup}${applied}`;
}

/** A table of jobs, newest first, and how to get the next page. */
export function renderList(page: UpscaleList): string {
  if (page.data.length === 0) return "no upscales\n";
  const rows = page.data.map((job) => [job.id, job.status, job.createdAt, `x${job.options.scales.join(",x")}`, job.options.format, `${job.input.width}x${job.input.height}`]);
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  const table = rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
  if (page.nextCursor) table.push(`more: --cursor ${page.nextCursor}`);
  return `${table.join("\n")}\n`;
}

export function renderUsage(usage: Usage): string {
  const { quota } = usage;
  const lines = [
    `key ${usage.keyId}, ${quota.period}: ${megapixels(quota.settledMp)} of ${megapixels(quota.monthlyQuotaMp)} used, ${megapixels(quota.reservedMp)} held by running jobs`,
    `${usage.granularity === "day" ? "day" : "month"} from ${usage.from} to ${usage.to}:`,
  ];
  if (usage.buckets.length === 0) lines.push("  no jobs");
  for (const bucket of usage.buckets) {
    lines.push(`  ${bucket.period}  ${bucket.jobs} jobs, ${megapixels(bucket.billableMp)} billed, ${bucket.cacheHits} cache hits, ${megapixels(bucket.outputMp)} out`);
  }
  return `${lines.join("\n")}\n`;
}

/** The served model: version, scales, upload limits, whether a temperature draws detail and whether --cleanup applies. */
export function renderModel(model: ServedModel): string {
  const { limits } = model;
  return [
    `${model.version}  scales ${model.scales.map((s) => `x${s}`).join(", ")}`,
    `  limits  ${megapixels(limits.maxInputPixels / 1e6)} in, ${megapixels(limits.maxOutputPixels / 1e6)} per output, ${Number((limits.maxUploadBytes / 2 ** 20).toFixed(1))} MiB per upload`,
    model.detail.sampling
      ? "  detail  generated: --temperature draws it (0 is greedy)"
      : "  detail  none: restoration only, deterministic (--temperature changes nothing)",
    model.cleanup.adjustable
      ? `  cleanup  adjustable: --cleanup 0 to 1 or auto (default ${model.cleanup.default}; 1 cleans fully, 0 keeps a photo's grain, auto: 1 for a noisy photo, 0.5 for a JPEG of quality 90-94, 0.25 from 95, else 0.75)`
      : "  cleanup  always full (--cleanup changes nothing)",
    "",
  ].join("\n");
}
