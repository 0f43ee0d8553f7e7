import { CONTENT_TYPES, type Output, SCALES, type Scale, isOutputFormat, replicateInputSchema, replicateOutputSchema, resultKey } from "@hvar/contract";
import type Replicate from "replicate";
import { sha256Hex, toBase64 } from "../security/crypto";
import { putResult } from "../storage/results";
import { sniffImage } from "../validate/sniff";
import { DispatchError, type DispatchJob, type Dispatcher, type RemoteState, unavailable } from "./types";

/**
 * Replicate: the model packaged with Cog (infra/replicate/predict.py, the runner's own pipeline) and
 * run as predictions. Their input and output are @hvar/contract's Replicate contract, which the
 * predictor's test checks predict.py against: input `image` (a data URI), `scales` ("2,4"), `format`,
 * `quality`, `temperature`, `cleanup` and the billed `size` ("640x480"), every one sent; output an object of "x1", "x2", "x4", each a URL or null
 * for a scale not asked for. Outputs are copied into R2 (Replicate deletes them after an hour), and their
 * sizes are read from the image headers. Replicate calls back on completion (verified in security/webhook-signature.ts);
 * polling works without the callback. `cancel` cancels the prediction (Replicate stops it and bills
 * the time it ran); a submit that failed left no prediction id, so there is nothing to cancel then.
 *
 * An output that cannot be downloaded now (Replicate down, a download slower than `timeoutMs`) is a
 * retryable DispatchError: the job is polled again until its deadline. An output that is not the
 * contract's, lacks a scale that was asked for, or is not an image of an output format fails the job as
 * `replicate_bad_output` (refunded): the prediction's fault, not the client's image's.
 */
export interface ReplicateOptions {
  client: Replicate;
  version: string;
  bucket: R2Bucket;
  /** Where Replicate sends its completion webhook; none means polling only. */
  webhookUrl?: string;
  /** Downloads outputs (replicate.delivery URLs); the global fetch unless given. */
  fetch?: typeof fetch;
  /** How long one output's download may take (RUNNER_TIMEOUT_MS). */
  timeoutMs: number;
}

const badOutput = (detail: string): RemoteState => ({
  status: "failed",
  error: { kind: "upstream", code: "replicate_bad_output", title: `Replicate's prediction gave an unusable output: ${detail}` },
});

export class ReplicateBackend implements Dispatcher {
  readonly backend = "replicate";

  constructor(private readonly options: ReplicateOptions) {}

  async submit(job: DispatchJob): Promise<{ runner: string }> {
    const { scales, format, quality, temperature, cleanup } = job.options;
    // Replicate takes the image inline: read from R2, where the edge streamed it.
    const stored = await this.options.bucket.get(job.input.key);
    if (!stored) throw unavailable("replicate_unavailable", "The job's input is not in R2");
    const image = new Uint8Array(await stored.arrayBuffer());
    // Every input, the model's defaults filled in; an option outside the contract is a bug here, not Replicate's.
    const input = replicateInputSchema.parse({
      image: `data:${job.contentType};base64,${toBase64(image)}`,
      scales: scales.join(","),
      format,
      temperature,
      cleanup: String(cleanup),
      ...(quality === null ? {} : { quality }),
      // The size the edge billed: the runner refuses an image that decodes to another (image_size_mismatch).
      size: `${job.width}x${job.height}`,
    });
    try {
      const prediction = await this.options.client.predictions.create({
        version: this.options.version,
        input,
        ...(this.options.webhookUrl ? { webhook: this.options.webhookUrl, webhook_events_filter: ["completed" as const] } : {}),
      });
      return { runner: prediction.id };
    } catch (error) {
      throw unavailable("replicate_unavailable", `Replicate refused the prediction: ${String(error)}`);
    }
  }

  async poll(jobId: string, predictionId: string): Promise<RemoteState> {
    try {
      return await this.pollOnce(jobId, predictionId);
    } catch (error) {
      if (error instanceof DispatchError) throw error;
      throw unavailable("replicate_unavailable", `Replicate or its output unreachable: ${String(error)}`);
    }
  }

  private async pollOnce(jobId: string, predictionId: string): Promise<RemoteState> {
    const prediction = await this.options.client.predictions.get(predictionId);
    switch (prediction.status) {
      case "starting":
        return { status: "queued" };
      case "processing":
        return { status: "running" };
      case "canceled":
        return { status: "canceled" };
      case "failed":
      case "aborted":
        return { status: "failed", error: { code: `replicate_${prediction.status}`, title: String(prediction.error ?? "The prediction did not succeed") } };
      case "succeeded":
        break;
    }
    const urls = replicateOutputSchema.safeParse(prediction.output);
    if (!urls.success) return badOutput("not an object of x1, x2 and x4, each a URL or null");
    const asked = replicateInputSchema.shape.scales.safeParse((prediction.input as { scales?: unknown }).scales);
    const scales = asked.success ? asked.data.split(",").map(Number) : [];
    const outputs: Output[] = [];
    for (const scale of SCALES) {
      const url = urls.data[`x${scale}`];
      if (!url) {
        if (scales.includes(scale)) return badOutput(`no x${scale}, which was asked for`);
        continue;
      }
      const copied = await this.copy(jobId, scale, url);
      if (typeof copied === "string") return badOutput(copied);
      outputs.push(copied);
    }
    return {
      status: "succeeded",
      outputs,
      model: { id: prediction.model, version: prediction.version },
      runnerMs: Math.round((prediction.metrics?.predict_time ?? 0) * 1000),
      // A prediction's output is its files: which strength `auto` chose is not among them.
      cleanup: null,
    };
  }

  async cancel(_jobId: string, predictionId: string | null): Promise<void> {
    if (predictionId === null) return;
    try {
      await this.options.client.predictions.cancel(predictionId);
    } catch (error) {
      throw unavailable("replicate_unavailable", `Replicate did not cancel the prediction: ${String(error)}`);
    }
  }

  /** The output, copied into R2; or what is wrong with it, when it is not an image of an output format. */
  private async copy(jobId: string, scale: Scale, url: string): Promise<Output | string> {
    const response = await (this.options.fetch ?? fetch)(url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    if (!response.ok) {
      await response.body?.cancel();
      throw unavailable("replicate_unavailable", `Output x${scale} unavailable (${response.status})`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    let image: ReturnType<typeof sniffImage>;
    try {
      image = sniffImage(bytes);
    } catch {
      return `x${scale} is not an image`;
    }
    const format = image.type;
    if (!isOutputFormat(format)) return `x${scale} is ${format}, not an output format`;
    const output: Output = {
      scale,
      key: resultKey(jobId, scale, format),
      contentType: CONTENT_TYPES[format],
      width: image.width,
      height: image.height,
      bytes: bytes.length,
      sha256: await sha256Hex(bytes),
    };
    await putResult(this.options.bucket, output, bytes.buffer);
    return output;
  }
}
