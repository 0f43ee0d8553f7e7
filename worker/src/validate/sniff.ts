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

/**
 * The parsers are generators that ask for the bytes they read (`Want`) and get them back: one
 * parser serves an image in memory (`sniffImage`), a stored upload read by ranges (`sniffStored`:
 * the first bytes kept while streaming, the rest from R2, for the formats whose size lies deeper:
 * WebP chunks, GIF frames, EXIF far from the start) and the first bytes of a body still arriving
 * (`sniffPrefix`), which stops where those end.
 */
interface Want {
  offset: number;
  length: number;
}
type Parse<T> = Generator<Want, T, Uint8Array>;

/** A lower bound of the decoded size, announced as soon as the header gives it (sniffPrefix refuses on it early). */
export type SizeHook = (size: { width: number; height: number }) => void;

class Reader {
  constructor(
    /** The image's length; Infinity while it is still arriving. */
    readonly length: number,
    private readonly type: ImageType,
    private readonly hook: SizeHook | undefined,
  ) {}
  *bytes(offset: number, length: number): Parse<Uint8Array> {
    if (offset < 0 || offset + length > this.length) throw malformed(this.type, "truncated header");
    return yield { offset, length };
  }
  private *view(offset: number, length: number): Parse<DataView> {
    const bytes = yield* this.bytes(offset, length);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  *u8(offset: number): Parse<number> {
    return (yield* this.view(offset, 1)).getUint8(0);
  }
  *u16be(offset: number): Parse<number> {
    return (yield* this.view(offset, 2)).getUint16(0);
  }
  *u16le(offset: number): Parse<number> {
    return (yield* this.view(offset, 2)).getUint16(0, true);
  }
  *u24le(offset: number): Parse<number> {
    const view = yield* this.view(offset, 3);
    return view.getUint16(0, true) | (view.getUint8(2) << 16);
  }
  *u32be(offset: number): Parse<number> {
    return (yield* this.view(offset, 4)).getUint32(0);
  }
  *u32le(offset: number): Parse<number> {
    return (yield* this.view(offset, 4)).getUint32(0, true);
  }
  *ascii(offset: number, length: number): Parse<string> {
    return String.fromCharCode(...(yield* this.bytes(offset, length)));
  }
  has(offset: number, length: number): boolean {
    return offset >= 0 && offset + length <= this.length;
  }
  /** The decoded image has at least this many pixels, whatever follows. */
  atLeast(width: number, height: number): void {
    this.hook?.({ width, height });
  }
}

const startsWith = (bytes: Uint8Array, prefix: readonly number[], at = 0) => prefix.every((b, i) => bytes[at + i] === b);
const asciiAt = (bytes: Uint8Array, at: number, text: string) => startsWith(bytes, [...text].map((ch) => ch.charCodeAt(0)), at);

/** The most an EXIF structure is read for its orientation (IFD0 comes first). */
const EXIF_MAX_BYTES = 1024 * 1024;

function* sniff(length: number, hook?: SizeHook): Parse<ImageInfo> {
  const head = yield { offset: 0, length: Math.min(16, length) };
  const reader = (type: ImageType) => new Reader(length, type, hook);
  const parsed = startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    ? yield* png(reader("png"))
    : startsWith(head, [0xff, 0xd8, 0xff])
      ? yield* jpeg(reader("jpeg"))
      : asciiAt(head, 0, "GIF87a") || asciiAt(head, 0, "GIF89a")
        ? yield* gif(reader("gif"))
        : asciiAt(head, 0, "RIFF") && asciiAt(head, 8, "WEBP")
          ? yield* webp(reader("webp"))
          : asciiAt(head, 4, "ftyp")
            ? yield* isobmff(length, hook)
            : yield* refuse(length);
  if (parsed.width < 1 || parsed.height < 1) throw malformed(parsed.type, "zero width or height");
  return { ...parsed, mime: IMAGE_TYPES[parsed.type] };
}

/** The type and decoded size of an image in memory. */
export function sniffImage(bytes: Uint8Array): ImageInfo {
  const parse = sniff(bytes.length);
  for (let step = parse.next(); ; ) {
    if (step.done) return step.value;
    step = parse.next(bytes.subarray(step.value.offset, step.value.offset + step.value.length));
  }
}

/** An image whose first bytes are at hand and whose other bytes can be read by range. */
export interface RangedImage {
  length: number;
  prefix: Uint8Array;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Bytes read per range beyond the prefix: parsers read forward, a few bytes at a time. */
const WINDOW_BYTES = 256 * 1024;

/** The type and decoded size of a stored image: its prefix first, then ranges of WINDOW_BYTES at most a few at a time. */
export async function sniffStored(image: RangedImage): Promise<ImageInfo> {
  const parse = sniff(image.length);
  let window = { start: 0, bytes: image.prefix };
  for (let step = parse.next(); ; ) {
    if (step.done) return step.value;
    const { offset, length } = step.value;
    const inside = (w: typeof window) => offset >= w.start && offset + length <= w.start + w.bytes.length;
    if (!inside(window)) {
      window = inside({ start: 0, bytes: image.prefix }) ? { start: 0, bytes: image.prefix } : { start: offset, bytes: await image.read(offset, Math.max(length, WINDOW_BYTES)) };
      if (!inside(window)) throw new Error(`the stored image ended before byte ${offset + length}`);
    }
    step = parse.next(window.bytes.subarray(offset - window.start, offset - window.start + length));
  }
}

/**
 * What the first bytes of a body still arriving tell: the image (type and size) when they hold every
 * byte the parser reads, else null. `hook` hears each lower bound of the size on the way, and what it
 * throws comes out, so that a header too large for the limits refuses the body before the rest of it
 * is read. Anything else (an unsupported type, a malformed header) is left to the exact read of the
 * stored image, after the byte limit, as for an image in memory.
 */
export function sniffPrefix(prefix: Uint8Array, hook: SizeHook): ImageInfo | null {
  const refusal: { error?: unknown } = {};
  const parse = sniff(Number.POSITIVE_INFINITY, (size) => {
    try {
      hook(size);
    } catch (error) {
      refusal.error = error;
      throw error;
    }
  });
  try {
    for (let step = parse.next(); ; ) {
      if (step.done) return step.value;
      const { offset, length } = step.value;
      if (offset + length > prefix.length) return null;
      step = parse.next(prefix.subarray(offset, offset + length));
    }
  } catch (error) {
    if ("error" in refusal && error === refusal.error) throw error;
    return null;
  }
}

function* refuse(length: number): Parse<never> {
  const bytes = yield { offset: 0, length: Math.min(256, length) };
  const head = new TextDecoder().decode(bytes).replace(/^\uFEFF/, "").trimStart();
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

function* png(r: Reader): Parse<Parsed> {
  if ((yield* r.ascii(12, 4)) !== "IHDR") throw malformed("png", "IHDR is not the first chunk");
  const width = yield* r.u32be(16);
  const height = yield* r.u32be(20);
  // Orientation only swaps the sides: the pixels are known now.
  r.atLeast(width, height);
  // APNG declares itself with an acTL chunk before the first IDAT; libpng reads an eXIf chunk (the
  // first one) only there too.
  let animated = false;
  let orientation: number | undefined;
  for (let offset = 8; r.has(offset, 8); ) {
    const length = yield* r.u32be(offset);
    const type = yield* r.ascii(offset + 4, 4);
    if (type === "acTL") animated = true;
    if (type === "eXIf" && orientation === undefined) orientation = exifOrientation(yield* r.bytes(offset + 8, Math.min(length, EXIF_MAX_BYTES)));
    if (type === "IDAT" || type === "IEND") break;
    offset += 12 + length;
  }
  return { type: "png", ...oriented(width, height, orientation ?? 1), animated };
}

/**
 * The frame header (SOF) gives the size; the first APP1 segment that is EXIF gives the orientation.
 * libjpeg reads every marker up to the scan (SOS), so an APP1 after the SOF still counts.
 */
function* jpeg(r: Reader): Parse<Parsed> {
  let size: { width: number; height: number } | undefined;
  let orientation: number | undefined;
  for (let offset = 2; ; ) {
    if ((yield* r.u8(offset)) !== 0xff) throw malformed("jpeg", "bad marker");
    let marker = yield* r.u8(offset + 1);
    while (marker === 0xff) marker = yield* r.u8(++offset + 1);
    offset += 2;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || (marker === 0xda && !size)) throw malformed("jpeg", "no frame header before the scan");
    if (marker === 0xda && size) return { type: "jpeg", ...oriented(size.width, size.height, orientation ?? 1), animated: false };
    const length = yield* r.u16be(offset);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (!size && marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      size = { height: yield* r.u16be(offset + 3), width: yield* r.u16be(offset + 5) };
      r.atLeast(size.width, size.height);
    }
    if (marker === 0xe1 && orientation === undefined && length >= 8 && (yield* r.ascii(offset + 2, 6)) === EXIF_HEADER) {
      orientation = exifOrientation(yield* r.bytes(offset + 8, length - 8));
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
function* gif(r: Reader): Parse<Parsed> {
  let width = yield* r.u16le(6);
  let height = yield* r.u16le(8);
  if (width === 0 || height === 0 || width > GIF_MAX_SCREEN || height > GIF_MAX_SCREEN || GIF_BOGUS_SCREENS.has(`${width}x${height}`)) {
    width = 1;
    height = 1;
  }
  r.atLeast(width, height);
  const flags = yield* r.u8(10);
  let offset = 13 + (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0);
  function* skipSubBlocks(): Parse<void> {
    for (let size = yield* r.u8(offset); size !== 0; size = yield* r.u8(offset)) offset += size + 1;
    offset += 1;
  }
  // Animated means more than one image descriptor; stop counting at the second.
  let frames = 0;
  while (r.has(offset, 1) && frames < 2) {
    const block = yield* r.u8(offset);
    if (block === 0x3b) break;
    if (block === 0x21) {
      offset += 2;
      yield* skipSubBlocks();
    } else if (block === 0x2c) {
      if (frames === 0) {
        width = Math.max(width, (yield* r.u16le(offset + 1)) + (yield* r.u16le(offset + 5)));
        height = Math.max(height, (yield* r.u16le(offset + 3)) + (yield* r.u16le(offset + 7)));
        r.atLeast(width, height);
      }
      frames += 1;
      const local = yield* r.u8(offset + 9);
      offset += 10 + (local & 0x80 ? 3 << ((local & 7) + 1) : 0) + 1;
      yield* skipSubBlocks();
    } else {
      throw malformed("gif", "unknown block");
    }
  }
  return { type: "gif", width, height, animated: frames > 1 };
}

/** The size a VP8 (lossy) or VP8L (lossless) bitstream codes, from its chunk's data. */
function* webpBitstream(r: Reader, chunk: string, data: number): Parse<{ width: number; height: number }> {
  if (chunk === "VP8 ") {
    if ((yield* r.u8(data + 3)) !== 0x9d || (yield* r.u8(data + 4)) !== 0x01 || (yield* r.u8(data + 5)) !== 0x2a) throw malformed("webp", "bad VP8 start code");
    return { width: (yield* r.u16le(data + 6)) & 0x3fff, height: (yield* r.u16le(data + 8)) & 0x3fff };
  }
  if ((yield* r.u8(data)) !== 0x2f) throw malformed("webp", "bad VP8L signature");
  const bits = yield* r.u32le(data + 1);
  return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
}

/**
 * Simple WebP: the bitstream's size. Extended (VP8X): the canvas, which libwebp requires a still
 * image's bitstream to match, and the orientation of its first EXIF chunk when the EXIF flag is set.
 */
function* webp(r: Reader): Parse<Parsed> {
  const chunk = yield* r.ascii(12, 4);
  if (chunk === "VP8 " || chunk === "VP8L") return { type: "webp", ...(yield* webpBitstream(r, chunk, 20)), animated: false };
  if (chunk !== "VP8X") throw malformed("webp", `unknown chunk ${JSON.stringify(chunk)}`);
  const flags = yield* r.u8(20);
  const animated = (flags & 0x02) !== 0;
  const width = (yield* r.u24le(24)) + 1;
  const height = (yield* r.u24le(27)) + 1;
  // A still image's bitstream must match the canvas, and an animation is refused: the pixels are known now.
  r.atLeast(width, height);
  let orientation: number | undefined;
  let bitstream: { width: number; height: number } | undefined;
  for (let offset = 12 + 8 + (yield* r.u32le(16)); r.has(offset, 8); ) {
    const name = yield* r.ascii(offset, 4);
    const size = yield* r.u32le(offset + 4);
    if ((name === "VP8 " || name === "VP8L") && !bitstream) bitstream = yield* webpBitstream(r, name, offset + 8);
    if (name === "EXIF" && flags & 0x08 && orientation === undefined) {
      const exif = yield* r.bytes(offset + 8, Math.min(size, EXIF_MAX_BYTES));
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
function* boxes(r: Reader, type: ImageType, start: number, end: number): Parse<Box[]> {
  const found: Box[] = [];
  for (let offset = start; offset + 8 <= end; ) {
    let size = yield* r.u32be(offset);
    const name = yield* r.ascii(offset + 4, 4);
    let header = 8;
    if (size === 1) {
      size = (yield* r.u32be(offset + 8)) * 2 ** 32 + (yield* r.u32be(offset + 12));
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
function* isobmff(length: number, hook: SizeHook | undefined): Parse<Parsed> {
  const probe = new Reader(length, "heif", hook);
  const ftypSize = yield* probe.u32be(0);
  const brands = [yield* probe.ascii(8, 4)];
  for (let offset = 16; offset + 4 <= Math.min(ftypSize, length); offset += 4) brands.push(yield* probe.ascii(offset, 4));
  const type: ImageType | null = brands.some((b) => AVIF_BRANDS.has(b))
    ? "avif"
    : brands.some((b) => HEIF_BRANDS.has(b))
      ? "heif"
      : null;
  if (!type) return yield* refuse(length);
  const r = new Reader(length, type, hook);
  function* child(parent: Box, name: string, fullBox = 0): Parse<Box[]> {
    return (yield* boxes(r, type ?? "heif", parent.start + fullBox, parent.end)).filter((b) => b.name === name);
  }

  const meta = (yield* boxes(r, type, 0, length)).find((b) => b.name === "meta");
  if (!meta) throw malformed(type, "no meta box");
  const pitm = (yield* child(meta, "pitm", 4))[0];
  const iprp = (yield* child(meta, "iprp", 4))[0];
  if (!pitm || !iprp) throw malformed(type, "no primary item or no item properties");
  const primary = (yield* r.u8(pitm.start)) === 0 ? yield* r.u16be(pitm.start + 4) : yield* r.u32be(pitm.start + 4);
  const properties: Box[] = [];
  for (const ipco of yield* child(iprp, "ipco")) properties.push(...(yield* boxes(r, type, ipco.start, ipco.end)));

  // ipma: for each item, the 1-based indexes of its properties in ipco (0: none), 7 or 15 bits each.
  const associated: Box[] = [];
  for (const ipma of yield* child(iprp, "ipma")) {
    const version = yield* r.u8(ipma.start);
    const wide = ((yield* r.u8(ipma.start + 3)) & 1) === 1;
    let offset = ipma.start + 8;
    for (let entries = yield* r.u32be(ipma.start + 4); entries > 0; entries--) {
      const item = version < 1 ? yield* r.u16be(offset) : yield* r.u32be(offset);
      offset += version < 1 ? 2 : 4;
      const count = yield* r.u8(offset);
      offset += 1;
      for (let i = 0; i < count; i++) {
        const index = wide ? (yield* r.u16be(offset)) & 0x7fff : (yield* r.u8(offset)) & 0x7f;
        offset += wide ? 2 : 1;
        const property = properties[index - 1];
        if (item === primary && property) associated.push(property);
      }
    }
  }

  const ispe = associated.find((p) => p.name === "ispe");
  if (!ispe) throw malformed(type, "the primary image has no size (ispe)");
  let width = yield* r.u32be(ispe.start + 4);
  let height = yield* r.u32be(ispe.start + 8);
  for (const property of associated) {
    // irot's low two bits count quarter turns: one or three swap width and height.
    if (property.name === "irot" && ((yield* r.u8(property.start)) & 3) % 2 === 1) [width, height] = [height, width];
    if (property.name === "clap") {
      const fraction = function* (at: number): Parse<number> {
        const denominator = yield* r.u32be(at + 4);
        if (denominator === 0) throw malformed(type ?? "heif", "clap with a zero denominator");
        return Math.round((yield* r.u32be(at)) / denominator);
      };
      [width, height] = [yield* fraction(property.start), yield* fraction(property.start + 8)];
    }
  }
  // clap may crop: only the final size is a bound.
  r.atLeast(width, height);
  return { type, width, height, animated: brands.some((b) => SEQUENCE_BRANDS.has(b)) };
}
