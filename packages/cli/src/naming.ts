import { basename, extname } from "node:path";
import { CONTENT_TYPES, type OutputFormat } from "../../contract/src/vocabulary.js";

/** An input that names an image on the web (the worker fetches it) rather than a file here. */
export const isUrlInput = (input: string): boolean => /^https?:\/\//i.test(input);

/** Characters that are not safe in a file name on some system, and control characters. */
const UNSAFE = /[<>:"/\\|?*\p{Cc}]/gu;

/**
 * The name an input's outputs are named after: a file's name without its extension, or a URL's last
 * path segment without it (`https://x/cats/tom.jpg?v=2` -> `tom`); `image` when there is none.
 */
export function stemOf(input: string): string {
  let name: string;
  if (isUrlInput(input)) {
    const last = new URL(input).pathname.split("/").filter(Boolean).pop() ?? "";
    try {
      name = decodeURIComponent(last);
    } catch {
      name = last;
    }
  } else {
    name = basename(input);
  }
  const stem = basename(name, extname(name)).replace(UNSAFE, "_");
  return stem === "" || stem === "." || stem === ".." ? "image" : stem;
}

const FORMAT_OF_TYPE = new Map<string, OutputFormat>(Object.entries(CONTENT_TYPES).map(([format, type]) => [type, format as OutputFormat]));

/** The file extension of an output: its format's name (`jpeg`, as the runner's CLI writes it), from its content type. */
export function extensionOf(contentType: string): string {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return FORMAT_OF_TYPE.get(type) ?? (type.replace(/^image\//, "").replace(/[^a-z0-9]/g, "") || "bin");
}

/** `<input-stem>.x<scale>.<ext>`, e.g. `photo.x4.webp`. */
export function outputName(input: string, scale: number, contentType: string): string {
  return `${stemOf(input)}.x${scale}.${extensionOf(contentType)}`;
}
