import sharp from "sharp";

/**
 * Deterministic synthetic photos for benchmarking: shapes, thin lines, text and gradients drawn
 * with SVG (librsvg in sharp). Not real photographs, and not the research-only benchmark images,
 * which never leave ../shared/datasets: good for throughput, indicative only for quality.
 */
export async function syntheticImage(width: number, height: number, seed: number): Promise<Buffer> {
  let state = seed * 2654435761;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) % 10_000) / 10_000;
  const colour = () => `rgb(${Math.floor(rand() * 255)},${Math.floor(rand() * 255)},${Math.floor(rand() * 255)})`;
  const shapes: string[] = [];
  for (let i = 0; i < 40; i++) {
    const x = rand() * width;
    const y = rand() * height;
    const r = 4 + rand() * Math.min(width, height) * 0.15;
    shapes.push(i % 3 === 0 ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour()}" fill-opacity="0.8"/>` : i % 3 === 1 ? `<rect x="${x}" y="${y}" width="${r * 1.6}" height="${r}" fill="${colour()}" transform="rotate(${rand() * 90} ${x} ${y})"/>` : `<line x1="${x}" y1="${y}" x2="${rand() * width}" y2="${rand() * height}" stroke="${colour()}" stroke-width="${1 + rand() * 3}"/>`);
  }
  for (let i = 0; i < 6; i++) shapes.push(`<text x="${rand() * width * 0.7}" y="${20 + rand() * (height - 20)}" font-family="sans-serif" font-size="${10 + rand() * 28}" fill="${colour()}">hvar ${seed}-${i} Quick brown fox</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient></defs>
  <rect width="100%" height="100%" fill="url(#g)"/>${shapes.join("")}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
