import { CONTENT_TYPES } from "@hvar/contract";
import { ProblemError } from "../http/problem";

/**
 * Image type from magic bytes and dimensions from the headers: no decoding, no trust in the
 * client's Content-Type. Only the first bytes (and, for animation, the chunk/block structure)
 * are read, so this costs microseconds whatever the image size.
 */
export const IMAGE_TYPES = {
  // Every output format is also accepted as input, with the same content type.
  ...CONTENT_TYPES,
  gif: "image/gif",
  heif: "image/heif",
} as const;
export type ImageType = keyof typeof IMAGE_TYPES;

export interface ImageInfo {
  type: ImageType;
  mime: (typeof IMAGE_TYPES)[ImageType];
  width: number;
  height: number;
  animated: boolean;
}

const malformed = (type: ImageType, detail: string) =>
  new ProblemError({ status: 400, code: "malformed_image", title: "The image header cannot be read", detail: `${type}: ${detail}` });

class Reader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array, private readonly type: ImageType) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.bytes.length) throw malformed(this.type, "truncated header");
  }
  u8(offset: number): number {
    this.need(offset, 1);
    return this.view.getUint8(offset);
  }
  u16be(offset: number): number {
    this.need(offset, 2);
    return this.view.getUint16(offset);
  }
  u16le(offset: number): number {
    this.need(offset, 2);
    return this.view.getUint16(offset, true);
  }
  u24le(offset: number): number {
    return this.u16le(offset) | (this.u8(offset + 2) << 16);
  }
  u32be(offset: number): number {
    this.need(offset, 4);
    return this.view.getUint32(offset);
  }
  u32le(offset: number): number {
    this.need(offset, 4);
    return this.view.getUint32(offset, true);
  }
  ascii(offset: number, length: number): string {
    this.need(offset, length);
    return String.fromCharCode(...this.bytes.subarray(offset, offset + length));
  }
  has(offset: number, length: number): boolean {
    return offset >= 0 && offset + length <= this.bytes.length;
  }
}

const startsWith = (bytes: Uint8Array, prefix: readonly number[], at = 0) => prefix.every((b, i) => bytes[at + i] === b);
const asciiAt = (bytes: Uint8Array, at: number, text: string) => startsWith(bytes, [...text].map((ch) => ch.charCodeAt(0)), at);

export function sniffImage(bytes: Uint8Array): ImageInfo {
  const parsed = startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    ? png(new Reader(bytes, "png"))
    : startsWith(bytes, [0xff, 0xd8, 0xff])
      ? jpeg(new Reader(bytes, "jpeg"))
      : asciiAt(bytes, 0, "GIF87a") || asciiAt(bytes, 0, "GIF89a")
        ? gif(new Reader(bytes, "gif"))
        : asciiAt(bytes, 0, "RIFF") && asciiAt(bytes, 8, "WEBP")
          ? webp(new Reader(bytes, "webp"))
          : asciiAt(bytes, 4, "ftyp")
            ? isobmff(bytes)
            : refuse(bytes);
  if (parsed.width < 1 || parsed.height < 1) throw malformed(parsed.type, "zero width or height");
  return { ...parsed, mime: IMAGE_TYPES[parsed.type] };
}

function refuse(bytes: Uint8Array): never {
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).replace(/^\uFEFF/, "").trimStart();
  const detail = head.startsWith("<")
    ? "SVG and other markup are not accepted: send PNG, JPEG, WebP, GIF, AVIF or HEIF."
    : "Send PNG, JPEG, WebP, GIF, AVIF or HEIF (the type is read from the bytes, not from Content-Type).";
  throw new ProblemError({ status: 415, code: "unsupported_media_type", title: "Unsupported image type", detail });
}

type Parsed = Omit<ImageInfo, "mime">;

function png(r: Reader): Parsed {
  if (r.ascii(12, 4) !== "IHDR") throw malformed("png", "IHDR is not the first chunk");
  const width = r.u32be(16);
  const height = r.u32be(20);
  // APNG declares itself with an acTL chunk before the first IDAT.
  let animated = false;
  for (let offset = 8; r.has(offset, 8); ) {
    const type = r.ascii(offset + 4, 4);
    if (type === "acTL") animated = true;
    if (type === "IDAT" || type === "IEND") break;
    offset += 12 + r.u32be(offset);
  }
  return { type: "png", width, height, animated };
}

function jpeg(r: Reader): Parsed {
  for (let offset = 2; ; ) {
    if (r.u8(offset) !== 0xff) throw malformed("jpeg", "bad marker");
    let marker = r.u8(offset + 1);
    while (marker === 0xff) marker = r.u8(++offset + 1);
    offset += 2;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || marker === 0xda) throw malformed("jpeg", "no frame header before the scan");
    const length = r.u16be(offset);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { type: "jpeg", height: r.u16be(offset + 3), width: r.u16be(offset + 5), animated: false };
    }
    offset += length;
  }
}

function gif(r: Reader): Parsed {
  const width = r.u16le(6);
  const height = r.u16le(8);
  const flags = r.u8(10);
  let offset = 13 + (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0);
  const skipSubBlocks = () => {
    for (let size = r.u8(offset); size !== 0; size = r.u8(offset)) offset += size + 1;
    offset += 1;
  };
  // Animated means more than one image descriptor; stop counting at the second.
  let frames = 0;
  while (r.has(offset, 1) && frames < 2) {
    const block = r.u8(offset);
    if (block === 0x3b) break;
    if (block === 0x21) {
      offset += 2;
      skipSubBlocks();
    } else if (block === 0x2c) {
      frames += 1;
      const local = r.u8(offset + 9);
      offset += 10 + (local & 0x80 ? 3 << ((local & 7) + 1) : 0) + 1;
      skipSubBlocks();
    } else {
      throw malformed("gif", "unknown block");
    }
  }
  return { type: "gif", width, height, animated: frames > 1 };
}

function webp(r: Reader): Parsed {
  const chunk = r.ascii(12, 4);
  if (chunk === "VP8 ") {
    if (r.u8(23) !== 0x9d || r.u8(24) !== 0x01 || r.u8(25) !== 0x2a) throw malformed("webp", "bad VP8 start code");
    return { type: "webp", width: r.u16le(26) & 0x3fff, height: r.u16le(28) & 0x3fff, animated: false };
  }
  if (chunk === "VP8L") {
    if (r.u8(20) !== 0x2f) throw malformed("webp", "bad VP8L signature");
    const bits = r.u32le(21);
    return { type: "webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, animated: false };
  }
  if (chunk === "VP8X") {
    return { type: "webp", width: r.u24le(24) + 1, height: r.u24le(27) + 1, animated: (r.u8(20) & 0x02) !== 0 };
  }
  throw malformed("webp", `unknown chunk ${JSON.stringify(chunk)}`);
}

const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const SEQUENCE_BRANDS = new Set(["avis", "msf1", "hevc", "hevx"]);

/** AVIF and HEIF: ISO-BMFF boxes; the size is the largest `ispe` (image spatial extents). */
function isobmff(bytes: Uint8Array): Parsed {
  const probe = new Reader(bytes, "heif");
  const ftypSize = probe.u32be(0);
  const brands = [probe.ascii(8, 4)];
  for (let offset = 16; offset + 4 <= Math.min(ftypSize, bytes.length); offset += 4) brands.push(probe.ascii(offset, 4));
  const type: ImageType | null = brands.some((b) => AVIF_BRANDS.has(b))
    ? "avif"
    : brands.some((b) => HEIF_BRANDS.has(b))
      ? "heif"
      : null;
  if (!type) refuse(bytes);
  const r = new Reader(bytes, type);
  let width = 0;
  let height = 0;
  const walk = (start: number, end: number, depth: number): void => {
    for (let offset = start; offset + 8 <= end; ) {
      let size = r.u32be(offset);
      const name = r.ascii(offset + 4, 4);
      let header = 8;
      if (size === 1) {
        size = r.u32be(offset + 8) * 2 ** 32 + r.u32be(offset + 12);
        header = 16;
      } else if (size === 0) {
        size = end - offset;
      }
      if (size < header) throw malformed(type, `bad box size in ${name}`);
      const boxEnd = Math.min(offset + size, end);
      if (name === "meta" && depth < 4) walk(offset + header + 4, boxEnd, depth + 1);
      else if ((name === "iprp" || name === "ipco") && depth < 4) walk(offset + header, boxEnd, depth + 1);
      else if (name === "ispe" && r.has(offset + header + 12, 0)) {
        const w = r.u32be(offset + header + 4);
        const h = r.u32be(offset + header + 8);
        if (w * h > width * height) [width, height] = [w, h];
      }
      offset += size;
    }
  };
  walk(0, bytes.length, 0);
  if (!width) throw malformed(type, "no image size (ispe) found");
  return { type, width, height, animated: brands.some((b) => SEQUENCE_BRANDS.has(b)) };
}
