import sharp from "sharp";
import { encodeSlots } from "./encode-slots";

/**
 * Upscales an alpha plane with Lanczos. The model only sees RGB (contract v1), so alpha takes the
 * classic route, as the design says; Lanczos keeps edges crisp without the model's texture.
 */
export async function upscaleAlpha(alpha: Buffer, width: number, height: number, scale: number): Promise<Buffer> {
  if (scale === 1) return alpha;
  const pipeline = sharp(alpha, { raw: { width, height, channels: 1 } }).resize(width * scale, height * scale, { kernel: "lanczos3", fit: "fill" });
  return encodeSlots(() => pipeline.extractChannel(0).raw().toBuffer());
}
