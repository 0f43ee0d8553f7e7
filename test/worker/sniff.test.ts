import { DomainError, toProblem } from "@hvar/contract";
import { describe, expect, it } from "vitest";
import { sniffImage, sniffPrefix, sniffStored } from "../../worker/src/validate/sniff";
import { exifTiff, gif, jpegWithExif, pngWithExif, webpWithExif } from "../fixtures/crafted-images";
import { fixtures } from "./fixtures/images";
import { heifHeader, png } from "./images";

/** The problem+json body the edge would answer for what `run` throws. */
function problemOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    if (error instanceof DomainError) return toProblem(error).body;
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
    expect(sniffImage(heifHeader(64, 64, { brands: ["avis", "msf1", "miaf"] }))).toMatchObject({ type: "avif", animated: true });
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
    expect(problemOf(() => sniffImage(heifHeader(64, 64, { brands: ["isom", "mp42"] })))).toMatchObject({ status: 415 });
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

describe("the size is what the runner's decoder will produce", () => {
  describe("GIF: the canvas libnsgif makes, not the logical screen alone", () => {
    it("takes a first frame larger than the logical screen: a 1x1 screen holding a 1500x1500 frame is 1500x1500", () => {
      expect(sniffImage(gif({ width: 1, height: 1 }, [{ width: 1500, height: 1500 }]))).toMatchObject({ width: 1500, height: 1500, animated: false });
    });

    it("grows the canvas to hold a first frame placed past the screen's edge", () => {
      expect(sniffImage(gif({ width: 100, height: 100 }, [{ left: 100, top: 20, width: 50, height: 90 }]))).toMatchObject({ width: 150, height: 110 });
    });

    it.each([
      [640, 480],
      [1024, 768],
      [0, 0],
      [3000, 10],
    ])("treats a %dx%d screen as no screen: the first frame gives the size", (width, height) => {
      expect(sniffImage(gif({ width, height }, [{ width: 100, height: 60 }]))).toMatchObject({ width: 100, height: 60 });
    });

    it("keeps a screen larger than the first frame (the frame sits on it)", () => {
      expect(sniffImage(gif({ width: 40, height: 30 }, [{ width: 10, height: 10 }]))).toMatchObject({ width: 40, height: 30 });
    });
  });

  describe("EXIF orientation: the size once the image is turned upright", () => {
    it.each([
      [1, 40, 30],
      [2, 40, 30],
      [3, 40, 30],
      [4, 40, 30],
      [5, 30, 40],
      [6, 30, 40],
      [7, 30, 40],
      [8, 30, 40],
    ])("reads a 40x30 JPEG with orientation %d as %dx%d", (orientation, width, height) => {
      expect(sniffImage(jpegWithExif(fixtures.jpegBaseline, exifTiff(orientation)))).toMatchObject({ type: "jpeg", width, height });
    });

    it("reads the orientation in either byte order and as a LONG", () => {
      expect(sniffImage(jpegWithExif(fixtures.jpegBaseline, exifTiff(6, { byteOrder: "MM" })))).toMatchObject({ width: 30, height: 40 });
      expect(sniffImage(jpegWithExif(fixtures.jpegBaseline, exifTiff(8, { type: "long" })))).toMatchObject({ width: 30, height: 40 });
    });

    it("ignores what the decoder ignores: an orientation outside IFD0, out of range, or in a second EXIF segment", () => {
      expect(sniffImage(jpegWithExif(fixtures.jpegBaseline, exifTiff(6, { ifd: 1 })))).toMatchObject({ width: 40, height: 30 });
      expect(sniffImage(jpegWithExif(fixtures.jpegBaseline, exifTiff(9)))).toMatchObject({ width: 40, height: 30 });
      const secondSaysTurn = jpegWithExif(jpegWithExif(fixtures.jpegBaseline, exifTiff(6)), exifTiff(1));
      expect(sniffImage(secondSaysTurn)).toMatchObject({ width: 40, height: 30 });
    });

    it("turns a PNG by its eXIf chunk", async () => {
      expect(sniffImage(pngWithExif(await png(33, 17), exifTiff(6)))).toMatchObject({ type: "png", width: 17, height: 33 });
    });

    it("turns a WebP by its EXIF chunk", () => {
      expect(sniffImage(webpWithExif(fixtures.webpLossy, exifTiff(8), 40, 30))).toMatchObject({ type: "webp", width: 30, height: 40 });
      expect(sniffImage(webpWithExif(fixtures.webpLossless, exifTiff(5), 40, 30))).toMatchObject({ type: "webp", width: 30, height: 40 });
    });
  });

  describe("HEIF and AVIF: the primary image, transformed as libheif transforms it", () => {
    it("swaps width and height for a quarter or three-quarter turn (irot)", () => {
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ irot: 1 }] }))).toMatchObject({ width: 3024, height: 4032 });
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ irot: 3 }] }))).toMatchObject({ width: 3024, height: 4032 });
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ irot: 2 }] }))).toMatchObject({ width: 4032, height: 3024 });
    });

    it("crops to the clean aperture (clap), before or after a turn", () => {
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ clap: { width: 4000, height: 3000 } }] }))).toMatchObject({ width: 4000, height: 3000 });
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ irot: 1 }, { clap: { width: 3000, height: 4000 } }] }))).toMatchObject({ width: 3000, height: 4000 });
      expect(sniffImage(heifHeader(4032, 3024, { transforms: [{ clap: { width: 4000, height: 3000 } }, { irot: 1 }] }))).toMatchObject({ width: 3000, height: 4000 });
    });

    it("reads the primary item's size, not another item's", () => {
      expect(sniffImage(heifHeader(640, 480, { other: { width: 4032, height: 3024 } }))).toMatchObject({ width: 640, height: 480 });
      expect(sniffImage(heifHeader(4032, 3024, { other: { width: 160, height: 120 } }))).toMatchObject({ width: 4032, height: 3024 });
    });
  });

  it("refuses a WebP whose canvas is not the size of its image with 400", () => {
    expect(problemOf(() => sniffImage(webpWithExif(fixtures.webpLossy, exifTiff(1), 1500, 1500)))).toMatchObject({ status: 400, code: "malformed_image" });
  });
});

describe("sniffing a stored image by range, and the first bytes of one still arriving", () => {
  /** `bytes` as stored: its first `prefixBytes` at hand, the rest read by range (each read's offset counted). */
  function stored(bytes: Uint8Array, prefixBytes: number) {
    const reads: number[] = [];
    const image = {
      length: bytes.length,
      prefix: bytes.slice(0, prefixBytes),
      read: async (offset: number, length: number) => {
        reads.push(offset);
        return bytes.slice(offset, offset + length);
      },
    };
    return { image, reads };
  }

  it.each([
    ["a WebP turned by an EXIF chunk after its bitstream", () => webpWithExif(fixtures.webpLossy, exifTiff(8), 40, 30)],
    ["a GIF whose frames (the canvas, the animation) lie past the header", () => gif({ width: 1, height: 1 }, [{ width: 150, height: 90 }, { width: 10, height: 10 }])],
    ["a JPEG turned by its EXIF segment", () => jpegWithExif(fixtures.jpegBaseline, exifTiff(6))],
    ["a HEIF turned by irot", () => heifHeader(4032, 3024, { transforms: [{ irot: 1 }] })],
  ])("reads %s past its first bytes exactly as in memory", async (_, make) => {
    const bytes = make();
    const { image, reads } = stored(bytes, 24);
    expect(await sniffStored(image)).toEqual(sniffImage(bytes));
    expect(reads.length).toBeGreaterThan(0);
  });

  it("announces the size in a header's first bytes and stops where they end", async () => {
    const sizes: { width: number; height: number }[] = [];
    expect(sniffPrefix((await png(300, 200)).subarray(0, 40), (size) => sizes.push(size))).toBeNull();
    expect(sizes).toEqual([{ width: 300, height: 200 }]);
  });

  it("refuses there what the size hook refuses", async () => {
    const refuse = () => {
      throw new Error("too large");
    };
    const header = (await png(300, 200)).subarray(0, 40);
    expect(() => sniffPrefix(header, refuse)).toThrow("too large");
  });

  it("answers in full when the first bytes hold all it reads, and leaves an unsupported type to the exact read", async () => {
    const small = await png(33, 17);
    expect(sniffPrefix(small, () => undefined)).toEqual(sniffImage(small));
    expect(sniffPrefix(new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'/>"), () => undefined)).toBeNull();
  });
});
