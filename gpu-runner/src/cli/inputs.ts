import { DomainError } from "@hvar/contract";
import { readFile, stat } from "node:fs/promises";
import { checkHeader, type ImageHeader } from "../image/decode";

export interface CheckedInputs {
  accepted: { file: string; header: ImageHeader }[];
  rejected: { file: string; reason: string }[];
}

/**
 * Every input file checked as far as it can be without a model: it exists, it is a file, and its header
 * is an image the runner decodes, within the pixel limit. A mistyped name is reported at once, not after
 * the model has loaded.
 */
export async function checkInputs(files: string[], maxPixels: number): Promise<CheckedInputs> {
  const checked: CheckedInputs = { accepted: [], rejected: [] };
  for (const file of files) {
    const found = await stat(file).catch(() => undefined);
    if (found === undefined) {
      checked.rejected.push({ file, reason: "no such file" });
    } else if (!found.isFile()) {
      checked.rejected.push({ file, reason: "not a file" });
    } else {
      try {
        checked.accepted.push({ file, header: await checkHeader(await readFile(file), { maxPixels }) });
      } catch (error) {
        checked.rejected.push({ file, reason: error instanceof DomainError ? `${error.code}: ${error.title}` : error instanceof Error ? error.message : String(error) });
      }
    }
  }
  return checked;
}
