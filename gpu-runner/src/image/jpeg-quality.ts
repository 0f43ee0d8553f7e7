/**
 * The quality a JPEG file was saved at, read from its own quantization table: what `cleanup=auto`
 * knows of a photo's compression without guessing it from the pixels (a reading of the 8x8 grid in
 * the pixels could not tell a clean photo from a JPEG of quality 90:
 * model/checkpoints/floor-x2/eval/grain-rule-probe.md).
 *
 * The estimate is libjpeg's (IJG) quality scale inverted: a file at IJG quality q divides the standard
 * luminance table by scale = 5000 / q below 50 and 200 - 2q from 50 (in percent), so the ratio of the
 * two tables' sums gives q back. Cameras and phones write tables of their own; their estimate is the
 * IJG quality whose table is as coarse on average (mozjpeg's own tables read 2-8 below its setting).
 */

/** ITU T.81 Annex K's luminance table: IJG's quality 50. Its sum is all the estimate needs, so its order does not matter. */
const STANDARD_LUMINANCE_SUM = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
].reduce((a, b) => a + b, 0);

const SOI = 0xd8;
const DQT = 0xdb;
const SOS = 0xda;

/**
 * The IJG-equivalent quality (1-100) of a JPEG's luminance table (table 0, by libjpeg's and every
 * camera's convention); undefined for bytes that are not a JPEG or define no table 0 before their
 * first scan.
 */
export function jpegQuality(bytes: Uint8Array): number | undefined {
  if (bytes[0] !== 0xff || bytes[1] !== SOI) return undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    if (marker === SOS || length < 2) return undefined;
    const table = marker === DQT ? luminanceTable(bytes.subarray(at + 4, Math.min(bytes.length, at + 2 + length))) : undefined;
    if (table !== undefined) return qualityOf(table);
    at += 2 + length;
  }
  return undefined;
}

/** Table 0's 64 entries from a DQT segment (one or more tables, 8 or 16 bits each), in the file's order. */
function luminanceTable(segment: Uint8Array): number[] | undefined {
  let at = 0;
  while (at < segment.length) {
    const precision = (segment[at] as number) >> 4;
    const id = (segment[at] as number) & 0x0f;
    const size = precision === 1 ? 2 : 1;
    if (at + 1 + 64 * size > segment.length) return undefined;
    if (id === 0) {
      return Array.from({ length: 64 }, (_, i) => (size === 2 ? ((segment[at + 1 + 2 * i] as number) << 8) | (segment[at + 2 + 2 * i] as number) : (segment[at + 1 + i] as number)));
    }
    at += 1 + 64 * size;
  }
  return undefined;
}

function qualityOf(table: number[]): number {
  const scale = (100 * table.reduce((a, b) => a + b, 0)) / STANDARD_LUMINANCE_SUM;
  const quality = scale <= 100 ? (200 - scale) / 2 : 5000 / scale;
  return Math.min(100, Math.max(1, Math.round(quality)));
}
