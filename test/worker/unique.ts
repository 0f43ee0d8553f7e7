import { expect } from "vitest";

/**
 * Names that no other test of the run uses, by construction rather than by chance. The worker's
 * tests share one runtime and its storage (vitest.config.ts), and its result cache is shared across
 * keys, so two tests that sent equal images, or wrote to one job id, would depend on their order.
 */

const issued = new Map<string, number>();

/**
 * The test file's name (unique in its folder) and how many names that file asked for before, in
 * fixed width so that no name is the beginning of another (URL prefixes): `upscales.test.ts-000007`.
 */
export function uniqueName(): string {
  const file = expect.getState().testPath?.split("/").pop() ?? "";
  const count = (issued.get(file) ?? 0) + 1;
  if (count >= 1e6) throw new Error(`${file} asked for a million names`);
  issued.set(file, count);
  return `${file}-${String(count).padStart(6, "0")}`;
}

/** The worker's id alphabet (randomId in worker/src/security/crypto.ts). */
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** `n` written in the id alphabet, `width` characters long: distinct counts give distinct id parts. */
export function idDigits(n: number, width: number): string {
  let digits = "";
  for (let rest = n; digits.length < width; rest = Math.floor(rest / 32)) digits = ID_ALPHABET.charAt(rest % 32) + digits;
  if (n >= 32 ** width) throw new Error(`${n} does not fit in ${width} id characters`);
  return digits;
}
