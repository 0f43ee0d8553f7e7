import { DomainError } from "@hvar/contract";
import { CONTENT_TYPES } from "@hvar/contract";

/**
 * Image type from magic bytes and dimensions from the headers: no decoding, no trust in the
 * client's Content-Type. Only headers and the chunk/block/box structure are read, never pixel data,
 * so this costs microseconds whatever the image size.
 *
 * The size is the one the runner's decoder (libvips) will produce, because it is what is billed and
 * limited: EXIF orientation (JPEG, PNG, WebP) and HEIF's irot/clap applied, a GIF's canvas as libnsgif
 * makes it (its first frame may grow it past the logical screen), a WebP's canvas checked against its
 * bitstream. The worker declares this size with the job and the runner refuses any image that decodes
 * to another (`image_size_mismatch`), so a header that lies can never buy pixels it did not pay for.
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
  /** As decoded and oriented: what the runner processes and the outputs are multiples of. */
  width: number;
  height: number;
  animated: boolean;
}

const malformed = (type: ImageType, detail: string) =>
  new DomainError({ kind: "invalid_input", code: "malformed_image", title: "The image header cannot be read", detail: `${type}: ${detail}` });

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
  throw new DomainError({ kind: "unsupported_type", code: "unsupported_media_type", title: "Unsupported image type", detail });
}

type Parsed = Omit<ImageInfo, "mime">;

/** EXIF orientations 5 to 8 turn the image a quarter: the decoded width is the stored height. */
const oriented = (width: number, height: number, orientation: number) => (orientation >= 5 ? { width: height, height: width } : { width, height });

const EXIF_HEADER = "Exif\0\0";

/**
 * The Orientation tag (0x0112) of IFD0 in an EXIF (TIFF) structure, read as libexif reads it for
 * libvips: the first such entry, any integer type, 1 when absent, unreadable or outside 1..8 (the
 * tag in another IFD is ignored, as libvips does).
 */
function exifOrientation(tiff: Uint8Array): number {
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = String.fromCharCode(tiff[0] ?? 0, tiff[1] ?? 0);
  if (tiff.length < 8 || (order !== "II" && order !== "MM")) return 1;
  const le = order === "II";
  // The integer types libexif converts to SHORT for this tag: [bytes, read] by TIFF type.
  const types: Record<number, [number, (at: number) => number]> = {
    1: [1, (at) => view.getUint8(at)],
    6: [1, (at) => view.getInt8(at)],
    3: [2, (at) => view.getUint16(at, le)],
    8: [2, (at) => view.getInt16(at, le)],
    4: [4, (at) => view.getUint32(at, le)],
    9: [4, (at) => view.getInt32(at, le)],
  };
  const ifd = view.getUint32(4, le);
  if (ifd + 2 > tiff.length) return 1;
  const entries = view.getUint16(ifd, le);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, le) !== 0x0112) continue;
    const type = types[view.getUint16(entry + 2, le)];
    const count = view.getUint32(entry + 4, le);
    if (!type || count === 0) return 1;
    const [size, read] = type;
    // A value of more than 4 bytes lies elsewhere, at the offset the entry holds.
    const at = size * count > 4 ? view.getUint32(entry + 8, le) : entry + 8;
    if (at + size > tiff.length) return 1;
    const value = read(at);
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

function png(r: Reader): Parsed {
  if (r.ascii(12, 4) !== "IHDR") throw malformed("png", "IHDR is not the first chunk");
  const width = r.u32be(16);
  const height = r.u32be(20);
  // APNG declares itself with an acTL chunk before the first IDAT; libpng reads an eXIf chunk (the
  // first one) only there too.
  let animated = false;
  let orientation: number | undefined;
  for (let offset = 8; r.has(offset, 8); ) {
    const length = r.u32be(offset);
    const type = r.ascii(offset + 4, 4);
    if (type === "acTL") animated = true;
    if (type === "eXIf" && orientation === undefined) orientation = exifOrientation(r.bytes.subarray(offset + 8, offset + 8 + length));
    if (type === "IDAT" || type === "IEND") break;
    offset += 12 + length;
  }
  return { type: "png", ...oriented(width, height, orientation ?? 1), animated };
}

/**
 * The frame header (SOF) gives the size; the first APP1 segment that is EXIF gives the orientation.
 * libjpeg reads every marker up to the scan (SOS), so an APP1 after the SOF still counts.
 */
function jpeg(r: Reader): Parsed {
  let size: { width: number; height: number } | undefined;
  let orientation: number | undefined;
  for (let offset = 2; ; ) {
    if (r.u8(offset) !== 0xff) throw malformed("jpeg", "bad marker");
    let marker = r.u8(offset + 1);
    while (marker === 0xff) marker = r.u8(++offset + 1);
    offset += 2;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || (marker === 0xda && !size)) throw malformed("jpeg", "no frame header before the scan");
    if (marker === 0xda && size) return { type: "jpeg", ...oriented(size.width, size.height, orientation ?? 1), animated: false };
    const length = r.u16be(offset);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (!size && marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      size = { height: r.u16be(offset + 3), width: r.u16be(offset + 5) };
    }
    if (marker === 0xe1 && orientation === undefined && length >= 8 && r.ascii(offset + 2, 6) === EXIF_HEADER) {
      orientation = exifOrientation(r.bytes.subarray(offset + 8, offset + length));
    }
    offset += length;
  }
}

/** Screen sizes libnsgif takes for an editor's canvas rather than the image's: it starts at 1x1 instead. */
const GIF_BOGUS_SCREENS = new Set(["640x480", "640x512", "800x600", "1024x768", "1280x1024", "1600x1200"]);
const GIF_MAX_SCREEN = 2048;

/**
 * The canvas libnsgif (libvips' GIF decoder) makes: the logical screen, unless it is zero, over 2048
 * or a common editor canvas (then 1x1), grown to hold the first frame. A screen that says 1x1 buys
 * nothing: a 1500x1500 first frame makes a 1500x1500 image.
 */
function gif(r: Reader): Parsed {
  let width = r.u16le(6);
  let height = r.u16le(8);
  if (width === 0 || height === 0 || width > GIF_MAX_SCREEN || height > GIF_MAX_SCREEN || GIF_BOGUS_SCREENS.has(`${width}x${height}`)) {
    width = 1;
    height = 1;
  }
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
      if (frames === 0) {
        width = Math.max(width, r.u16le(offset + 1) + r.u16le(offset + 5));
        height = Math.max(height, r.u16le(offset + 3) + r.u16le(offset + 7));
      }
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

/** The size a VP8 (lossy) or VP8L (lossless) bitstream codes, from its chunk's data. */
function webpBitstream(r: Reader, chunk: string, data: number): { width: number; height: number } {
  if (chunk === "VP8 ") {
    if (r.u8(data + 3) !== 0x9d || r.u8(data + 4) !== 0x01 || r.u8(data + 5) !== 0x2a) throw malformed("webp", "bad VP8 start code");
    return { width: r.u16le(data + 6) & 0x3fff, height: r.u16le(data + 8) & 0x3fff };
  }
  if (r.u8(data) !== 0x2f) throw malformed("webp", "bad VP8L signature");
  const bits = r.u32le(data + 1);
  return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
}

/**
 * Simple WebP: the bitstream's size. Extended (VP8X): the canvas, which libwebp requires a still
 * image's bitstream to match, and the orientation of its first EXIF chunk when the EXIF flag is set.
 */
function webp(r: Reader): Parsed {
  const chunk = r.ascii(12, 4);
  if (chunk === "VP8 " || chunk === "VP8L") return { type: "webp", ...webpBitstream(r, chunk, 20), animated: false };
  if (chunk !== "VP8X") throw malformed("webp", `unknown chunk ${JSON.stringify(chunk)}`);
  const flags = r.u8(20);
  const animated = (flags & 0x02) !== 0;
  const width = r.u24le(24) + 1;
  const height = r.u24le(27) + 1;
  let orientation: number | undefined;
  let bitstream: { width: number; height: number } | undefined;
  for (let offset = 12 + 8 + r.u32le(16); r.has(offset, 8); ) {
    const name = r.ascii(offset, 4);
    const size = r.u32le(offset + 4);
    if ((name === "VP8 " || name === "VP8L") && !bitstream) bitstream = webpBitstream(r, name, offset + 8);
    if (name === "EXIF" && flags & 0x08 && orientation === undefined) {
      const exif = r.bytes.subarray(offset + 8, offset + 8 + size);
      const header = String.fromCharCode(...exif.subarray(0, 6)) === EXIF_HEADER ? 6 : 0;
      orientation = exifOrientation(exif.subarray(header));
    }
    offset += 8 + size + (size % 2);
  }
  if (!animated && !bitstream) throw malformed("webp", "no image data");
  if (!animated && bitstream && (bitstream.width !== width || bitstream.height !== height)) {
    throw malformed("webp", `the canvas is ${width}x${height} but the image is ${bitstream.width}x${bitstream.height}`);
  }
  return { type: "webp", ...oriented(width, height, orientation ?? 1), animated };
}

const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const SEQUENCE_BRANDS = new Set(["avis", "msf1", "hevc", "hevx"]);

interface Box {
  name: string;
  /** Where the box's content starts (after its header) and ends. */
  start: number;
  end: number;
}

/** The boxes between `start` and `end`, in order. */
function boxes(r: Reader, type: ImageType, start: number, end: number): Box[] {
  const found: Box[] = [];
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
    found.push({ name, start: offset + header, end: Math.min(offset + size, end) });
    offset += size;
  }
  return found;
}

/**
 * AVIF and HEIF: ISO-BMFF boxes. The image is the primary item (`pitm`); its size is its `ispe`
 * (image spatial extents), then its transformative properties in their `ipma` order, as libheif
 * applies them: `irot` by 90 or 270 degrees swaps width and height, `clap` crops to its clean aperture.
 */
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
  const child = (parent: Box, name: string, fullBox = 0) => boxes(r, type, parent.start + fullBox, parent.end).filter((b) => b.name === name);

  const meta = boxes(r, type, 0, bytes.length).find((b) => b.name === "meta");
  if (!meta) throw malformed(type, "no meta box");
  const pitm = child(meta, "pitm", 4)[0];
  const iprp = child(meta, "iprp", 4)[0];
  if (!pitm || !iprp) throw malformed(type, "no primary item or no item properties");
  const primary = r.u8(pitm.start) === 0 ? r.u16be(pitm.start + 4) : r.u32be(pitm.start + 4);
  const properties = child(iprp, "ipco").flatMap((ipco) => boxes(r, type, ipco.start, ipco.end));

  // ipma: for each item, the 1-based indexes of its properties in ipco (0: none), 7 or 15 bits each.
  const associated: Box[] = [];
  for (const ipma of child(iprp, "ipma")) {
    const version = r.u8(ipma.start);
    const wide = (r.u8(ipma.start + 3) & 1) === 1;
    let offset = ipma.start + 8;
    for (let entries = r.u32be(ipma.start + 4); entries > 0; entries--) {
      const item = version < 1 ? r.u16be(offset) : r.u32be(offset);
      offset += version < 1 ? 2 : 4;
      const count = r.u8(offset);
      offset += 1;
      for (let i = 0; i < count; i++) {
        const index = wide ? r.u16be(offset) & 0x7fff : r.u8(offset) & 0x7f;
        offset += wide ? 2 : 1;
        const property = properties[index - 1];
        if (item === primary && property) associated.push(property);
      }
    }
  }

  const ispe = associated.find((p) => p.name === "ispe");
  if (!ispe) throw malformed(type, "the primary image has no size (ispe)");
  let width = r.u32be(ispe.start + 4);
  let height = r.u32be(ispe.start + 8);
  for (const property of associated) {
    // irot's low two bits count quarter turns: one or three swap width and height.
    if (property.name === "irot" && (r.u8(property.start) & 3) % 2 === 1) [width, height] = [height, width];
    if (property.name === "clap") {
      const fraction = (at: number) => {
        const denominator = r.u32be(at + 4);
        if (denominator === 0) throw malformed(type, "clap with a zero denominator");
        return Math.round(r.u32be(at) / denominator);
      };
      [width, height] = [fraction(property.start), fraction(property.start + 8)];
    }
  }
  return { type, width, height, animated: brands.some((b) => SEQUENCE_BRANDS.has(b)) };
}
