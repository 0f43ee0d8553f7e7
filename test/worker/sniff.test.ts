import { describe, expect, it } from "vitest";
import { ProblemError } from "../../worker/src/http/problem";
import { sniffImage } from "../../worker/src/validate/sniff";
import { fixtures } from "./fixtures/images";
import { heifHeader, png } from "./images";

function problemOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    if (error instanceof ProblemError) return error.problem;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("sniffing the image type and size from the bytes", () => {
  it.each([
    ["jpegBaseline", "jpeg"],
    ["jpegProgressive", "jpeg"],
    ["webpLossy", "webp"],
    ["webpLossless", "webp"],
    ["webpAlpha", "webp"],
    ["gifStatic", "gif"],
    ["avif", "avif"],
  ] as const)("reads %s as a still %s of 40x30", (name, type) => {
    expect(sniffImage(fixtures[name])).toMatchObject({ type, width: 40, height: 30, animated: false });
  });

  it("reads a PNG", async () => {
    expect(sniffImage(await png(33, 17))).toEqual({ type: "png", mime: "image/png", width: 33, height: 17, animated: false });
  });

  it("reads a HEIF header", () => {
    expect(sniffImage(heifHeader(4032, 3024))).toMatchObject({ type: "heif", mime: "image/heif", width: 4032, height: 3024 });
  });

  it.each([["gifAnimated"], ["webpAnimated"], ["apng"]] as const)("flags %s as animated", (name) => {
    expect(sniffImage(fixtures[name])).toMatchObject({ width: 40, height: 30, animated: true });
  });

  it("flags an AVIF image sequence as animated", () => {
    expect(sniffImage(heifHeader(64, 64, ["avis", "msf1", "miaf"]))).toMatchObject({ type: "avif", animated: true });
  });
});

describe("refusing what is not an accepted image", () => {
  it("refuses SVG with 415", () => {
    const svg = new TextEncoder().encode('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>');
    expect(problemOf(() => sniffImage(svg))).toMatchObject({ status: 415, code: "unsupported_media_type", detail: expect.stringContaining("SVG") });
  });

  it("refuses unknown bytes with 415", () => {
    expect(problemOf(() => sniffImage(new TextEncoder().encode("%PDF-1.7 ...")))).toMatchObject({ status: 415 });
  });

  it("refuses an MP4 (ISO-BMFF but not an image brand) with 415", () => {
    expect(problemOf(() => sniffImage(heifHeader(64, 64, ["isom", "mp42"])))).toMatchObject({ status: 415 });
  });

  it("answers 400 malformed_image for a truncated header", async () => {
    const truncated = (await png(10, 10)).subarray(0, 20);
    expect(problemOf(() => sniffImage(truncated))).toMatchObject({ status: 400, code: "malformed_image" });
  });

  it("answers 400 malformed_image for a zero-sized image", async () => {
    const bytes = await png(10, 10);
    bytes.set([0, 0, 0, 0], 16);
    expect(problemOf(() => sniffImage(bytes))).toMatchObject({ status: 400, code: "malformed_image" });
  });

  it("answers 400 malformed_image for a JPEG without a frame header", () => {
    expect(problemOf(() => sniffImage(new Uint8Array([0xff, 0xd8, 0xff, 0xd9])))).toMatchObject({ status: 400, code: "malformed_image" });
  });
});
