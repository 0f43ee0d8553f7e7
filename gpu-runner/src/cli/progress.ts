/** Where the CLI writes: a process stream, or anything with the same two members (tests). */
export interface TextOut {
  isTTY?: boolean;
  write(chunk: string): unknown;
}

/** Off a terminal, one line each time an image passes another tenth of its tiles. */
const LINE_STEPS = 10;

/**
 * Progress over tiles: on a terminal, a one-line bar redrawn in place; on anything else (a pipe, a
 * CI log), plain lines at each tenth of the tiles, so logs show progress without carriage returns
 * and without a line per tile.
 */
export class ProgressBar {
  private lastDrawn = -1;
  private lastStep = -1;

  constructor(
    private readonly stream: TextOut,
    private readonly label: string,
    private readonly width = 30,
  ) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY) {
      const step = total === 0 ? LINE_STEPS : Math.floor((done / total) * LINE_STEPS);
      if (step <= this.lastStep) return;
      this.lastStep = step;
      this.stream.write(`${this.label}: ${step * (100 / LINE_STEPS)}% (${done}/${total} tiles)\n`);
      return;
    }
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
