/**
 * A one-line progress bar over tiles on a terminal; on anything else (a pipe, a CI log) it stays
 * quiet until the end, so logs are not flooded with carriage returns.
 */
/** Where the CLI writes: a process stream, or anything with the same two members (tests). */
export interface TextOut {
  isTTY?: boolean;
  write(chunk: string): unknown;
}

export class ProgressBar {
  private lastDrawn = -1;

  constructor(
    private readonly stream: TextOut,
    private readonly label: string,
    private readonly width = 30,
  ) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY) return;
    const filled = total === 0 ? this.width : Math.round((done / total) * this.width);
    // Redraw only when the bar moves: thousands of tiles must not mean thousands of writes.
    if (filled === this.lastDrawn && done !== total) return;
    this.lastDrawn = filled;
    this.stream.write(`\r${this.label} [${"#".repeat(filled)}${"-".repeat(this.width - filled)}] ${done}/${total} tiles`);
  }

  finish(message: string): void {
    this.stream.write(`${this.stream.isTTY ? "\r\x1b[2K" : ""}${message}\n`);
  }
}
