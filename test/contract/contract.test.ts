import {
  CONTENT_TYPES,
  DEFAULT_QUALITY,
  JOB_CANCELED,
  OUTPUT_FORMATS,
  SCALES,
  cancelJobPath,
  createJobPath,
  isCanceled,
  jobOptionsSchema,
  jobQuerySchema,
  modelName,
  parseResultKey,
  DomainError,
  ERROR_KINDS,
  STATUS_OF_KIND,
  fromProblem,
  maxInputPixelsAt,
  problemBody,
  toProblem,
  resultKey,
  resultPrefix,
  runnerJobSchema,
  scaleListSchema,
  signatureOf,
  signingInput,
} from "@hvar/contract";
import { describe, expect, it } from "vitest";

const JOB = "j_abcdefghijklmnopqrst";
const sha256 = "0".repeat(64);

describe("result keys", () => {
  it("name one output of one job, and parse back to its job, scale and format", () => {
    for (const scale of SCALES) {
      for (const format of OUTPUT_FORMATS) expect(parseResultKey(resultKey(JOB, scale, format))).toEqual({ jobId: JOB, scale, format });
    }
  });

  it("lie under their job's prefix, which no other job's keys start with", () => {
    expect(resultKey(JOB, 4, "jpeg").startsWith(resultPrefix(JOB))).toBe(true);
    expect(resultKey(`${JOB}x`, 4, "jpeg").startsWith(resultPrefix(JOB))).toBe(false);
  });

  it("are nothing else: no other scale, format, folder or job id", () => {
    for (const key of [`results/${JOB}/x3.png`, `results/${JOB}/x2.gif`, `results/${JOB}/x2.png.bak`, `inputs/${JOB}`, "results/../x2.png", "results/a/b/x2.png"]) {
      expect(parseResultKey(key), key).toBeNull();
    }
  });
});

describe("the request signature", () => {
  it("signs method, path with query, timestamp and the body's hash, one per line", () => {
    expect(signingInput({ method: "post", pathAndQuery: "/v1/jobs?id=a", timestamp: "1700000000", bodySha256: sha256 })).toBe(`POST\n/v1/jobs?id=a\n1700000000\n${sha256}`);
  });

  it("is read from a v1 header of 64 hex digits only", () => {
    expect(signatureOf(`v1=${"ab".repeat(32)}`)).toBe("ab".repeat(32));
    for (const header of [undefined, "ab".repeat(32), `v2=${"ab".repeat(32)}`, `v1=${"AB".repeat(32)}`, `v1=${"ab".repeat(31)}`]) expect(signatureOf(header)).toBeUndefined();
  });

  it("signs a cancel like any request: POST, the job's cancel path, and the hash of an empty body", () => {
    const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    expect(signingInput({ method: "POST", pathAndQuery: cancelJobPath(JOB), timestamp: "1700000000", bodySha256: empty })).toBe(`POST\n/v1/jobs/${JOB}/cancel\n1700000000\n${empty}`);
  });
});

describe("the job query", () => {
  it("carries a job's options and the image's size from the worker to the runner unchanged", () => {
    const options = { scales: [2, 4] as const, format: "webp" as const, quality: 70, temperature: 0.5, cleanup: 1 };
    const size = { width: 640, height: 480 };
    const query = Object.fromEntries(new URL(createJobPath(JOB, { ...options, scales: [...options.scales] }, size), "http://runner").searchParams);
    expect(jobQuerySchema.parse(query)).toEqual({ id: JOB, ...options, scales: [2, 4], size });
  });

  it("leaves out the quality of PNG, which the runner then fills with the one default", () => {
    const path = createJobPath(JOB, { scales: [1], format: "png", quality: null, temperature: 0, cleanup: 1 }, { width: 16, height: 16 });
    expect(path).not.toContain("quality");
    expect(jobQuerySchema.parse(Object.fromEntries(new URL(path, "http://runner").searchParams))).toMatchObject({ quality: DEFAULT_QUALITY });
  });

  it("reads the size as <width>x<height> of positive integers, and nothing else", () => {
    expect(jobQuerySchema.parse({ id: JOB, size: "640x480" }).size).toEqual({ width: 640, height: 480 });
    for (const size of ["640", "0x480", "640x", "640x480x3", "-1x2", "1.5x2", "1234567x1"]) expect(jobQuerySchema.safeParse({ id: JOB, size }).success, size).toBe(false);
  });

  it("asks for the image's own clean-up (auto) where none is given; a job stored without one was made at 1", () => {
    expect(jobQuerySchema.parse({ id: JOB }).cleanup).toBe("auto");
    expect(jobOptionsSchema.parse({ scales: [2], format: "png", quality: null, temperature: 0 }).cleanup).toBe(1);
  });

  it("reads the clean-up as auto or a strength from 0 to 1, and nothing else", () => {
    expect(jobQuerySchema.parse({ id: JOB, cleanup: "auto" }).cleanup).toBe("auto");
    expect(jobQuerySchema.parse({ id: JOB, cleanup: "0.5" }).cleanup).toBe(0.5);
    for (const cleanup of ["AUTO", "1.5", "-0.1", "half"]) expect(jobQuerySchema.safeParse({ id: JOB, cleanup }).success, cleanup).toBe(false);
  });

  it("reads scales as a sorted set, with or without an x, every scale when absent", () => {
    expect(scaleListSchema.parse("4, x2,2")).toEqual([2, 4]);
    expect(scaleListSchema.parse(undefined)).toEqual([...SCALES]);
    expect(scaleListSchema.safeParse("3").success).toBe(false);
    expect(scaleListSchema.safeParse("").success).toBe(false);
  });
});

describe("a runner's job", () => {
  const succeeded = {
    id: JOB,
    status: "succeeded",
    model: { id: "hvar-base", version: "1.0.0" },
    input: { width: 4, height: 4 },
    progress: { tilesDone: 1, tilesTotal: 1 },
    outputs: [{ scale: 2, key: resultKey(JOB, 2, "webp"), contentType: CONTENT_TYPES.webp, width: 8, height: 8, bytes: 10, sha256 }],
  };

  it("is named by its model as `<id>@<version>`, the form of the worker's MODEL_VERSION", () => {
    expect(modelName(runnerJobSchema.parse(succeeded).model)).toBe("hvar-base@1.0.0");
  });

  it("ends failed with job_canceled when it was canceled, and only then counts as canceled", () => {
    const canceled = runnerJobSchema.parse({ ...succeeded, status: "failed", outputs: undefined, error: JOB_CANCELED });
    expect(isCanceled(canceled)).toBe(true);
    expect(isCanceled({ ...canceled, error: { code: "inference_failed", title: "The runner could not process this image." } })).toBe(false);
    expect(isCanceled({ ...canceled, status: "running" })).toBe(false);
  });

  it("counts its progress in whole, non-negative tiles", () => {
    expect(runnerJobSchema.safeParse({ ...succeeded, progress: { tilesDone: -1, tilesTotal: 1 } }).success).toBe(false);
    expect(runnerJobSchema.safeParse({ ...succeeded, progress: { tilesDone: 0.5, tilesTotal: 1 } }).success).toBe(false);
  });

  it("has outputs whose key names their own scale and content type", () => {
    const output = succeeded.outputs[0];
    expect(runnerJobSchema.safeParse({ ...succeeded, outputs: [{ ...output, scale: 4 }] }).success).toBe(false);
    expect(runnerJobSchema.safeParse({ ...succeeded, outputs: [{ ...output, contentType: CONTENT_TYPES.png }] }).success).toBe(false);
  });
});

describe("a problem", () => {
  it("has a type URL named after its code, and keeps its extensions", () => {
    expect(problemBody({ status: 404, code: "job_not_found", title: "No job with this id.", jobId: JOB })).toEqual({
      type: "https://hvar.dev/problems/job_not_found",
      status: 404,
      code: "job_not_found",
      title: "No job with this id.",
      jobId: JOB,
    });
  });
});

describe("errors", () => {
  it("have one status per kind, and every kind has one", () => {
    const statuses = ERROR_KINDS.map((kind) => STATUS_OF_KIND[kind]);
    expect(new Set(statuses).size).toBe(ERROR_KINDS.length);
  });

  it("answer as problem+json with their kind's status, Retry-After and extensions, but never their log-only reason", () => {
    const error = new DomainError({ kind: "limit_reached", code: "runner_busy", title: "Busy", retryAfterS: 3, extensions: { jobId: JOB }, reason: "http://10.0.0.7:8788 said so" });
    const problem = toProblem(error);
    expect(problem).toEqual({ status: 429, headers: { "retry-after": "3" }, body: { type: "https://hvar.dev/problems/runner_busy", status: 429, code: "runner_busy", title: "Busy", jobId: JOB } });
    expect(JSON.stringify(problem)).not.toContain("10.0.0.7");
  });

  it("read back from a problem keep their code and kind, so the worker passes a runner's reason on as it was", () => {
    const { body, status } = toProblem(new DomainError({ kind: "unprocessable", code: "image_too_large", title: "Too many pixels", detail: "2100x2100" }));
    expect(fromProblem(status, body)).toMatchObject({ kind: "unprocessable", code: "image_too_large", title: "Too many pixels", detail: "2100x2100" });
    expect(fromProblem(502, { not: "a problem" })).toBeNull();
  });
});

describe("pixel limits", () => {
  it("bound every scale by the runner's input limit and the output limit over scale²", () => {
    const limits = { maxInputPixels: 2 ** 22, maxOutputPixels: 64 * 1024 * 1024 };
    expect([1, 2, 4].map((scale) => maxInputPixelsAt(scale, limits))).toEqual([2 ** 22, 2 ** 22, 2 ** 22]);
    expect(2100 * 2100).toBeGreaterThan(maxInputPixelsAt(2, limits));
    expect(maxInputPixelsAt(4, { ...limits, maxOutputPixels: 1024 * 1024 })).toBe(65536);
  });
});
