import { ascii, concat, crc32, u32be as u32 } from "../fixtures/bytes";
import { uniqueName } from "./unique";

/** Real PNG encoding for tests (any size, every image distinct), plus a HEIF header builder. */

function chunk(type: string, data: Uint8Array): Uint8Array {
  const typed = concat([ascii(type), data]);
  return concat([u32(data.length), typed, u32(crc32(typed))]);
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface PngOptions {
  /** tEXt chunks; the test runner reads `hvar-test` to pick a behaviour (fail, hang, ...). */
  text?: Record<string, string>;
}

/**
 * An 8-bit RGB PNG of a gradient whose first pixels spell out a `uniqueName()`, so no two calls
 * return the same image (a test that needs one image twice keeps its bytes).
 */
export async function png(width: number, height: number, options: PngOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([x & 0xff, (y * 3) & 0xff, (x ^ y) & 0xff], (y * width + x) * 3);
  }
  const tag = ascii(`${uniqueName()}\0`);
  if (tag.length > pixels.length) throw new Error(`a ${width}x${height} image is too small for its tag`);
  pixels.set(tag);
  // Each row of PNG image data starts with its filter type: 0, none.
  const raw = new Uint8Array((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  const ihdr = concat([u32(width), u32(height), new Uint8Array([8, 2, 0, 0, 0])]);
  const text = Object.entries(options.text ?? {}).map(([k, v]) => chunk("tEXt", ascii(`${k}\0${v}`)));
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    ...text,
    chunk("IDAT", await deflate(raw)),
    chunk("IEND", new Uint8Array()),
  ]);
}

function box(type: string, ...payload: Uint8Array[]): Uint8Array {
  const body = concat(payload);
  return concat([u32(body.length + 8), ascii(type), body]);
}

export interface HeifOptions {
  brands?: string[];
  /** The primary image's transformative properties, in the order libheif applies them. */
  transforms?: ({ irot: 1 | 2 | 3 } | { clap: { width: number; height: number } })[];
  /** Another image item of this size (a thumbnail, say) listed before the primary one. */
  other?: { width: number; height: number };
}

/**
 * The box structure of a HEIF still image (ftyp, meta with pitm and iprp/ipco/ipma) as an encoder
 * writes it; item info and the coded data are left out because validation reads only the header.
 */
export function heifHeader(width: number, height: number, options: HeifOptions = {}): Uint8Array {
  const brands = options.brands ?? ["heic", "mif1"];
  const fullBox = new Uint8Array(4);
  const ispe = (w: number, h: number) => box("ispe", fullBox, u32(w), u32(h));
  const transforms = (options.transforms ?? []).map((t) =>
    "irot" in t ? box("irot", new Uint8Array([t.irot])) : box("clap", ...[t.clap.width, 1, t.clap.height, 1, 0, 1, 0, 1].map(u32)),
  );
  // ipco: 1 the primary's ispe, 2.. its transforms, then the other item's ispe.
  const properties = [ispe(width, height), ...transforms, ...(options.other ? [ispe(options.other.width, options.other.height)] : [])];
  const PRIMARY = 1;
  const OTHER = 2;
  const entry = (item: number, indexes: number[]) => new Uint8Array([item >> 8, item & 0xff, indexes.length, ...indexes.map((i) => 0x80 | i)]);
  const entries = [
    ...(options.other ? [entry(OTHER, [properties.length])] : []),
    entry(PRIMARY, properties.slice(0, 1 + transforms.length).map((_, i) => i + 1)),
  ];
  return concat([
    box("ftyp", ascii(brands[0] ?? "heic"), u32(0), ...brands.map(ascii)),
    box(
      "meta",
      fullBox,
      box("hdlr", fullBox, u32(0), ascii("pict"), new Uint8Array(13)),
      box("pitm", fullBox, new Uint8Array([0, PRIMARY])),
      box("iprp", box("ipco", ...properties), box("ipma", fullBox, u32(entries.length), ...entries)),
    ),
    box("mdat", new Uint8Array(16)),
  ]);
}
