/** Where the command writes: a process stream, or anything with the same two members (tests). */
export interface TextOut {
  isTTY?: boolean;
  write(chunk: string): unknown;
}

const BAR_WIDTH = 30;
/** Off a terminal, one line each time the job passes another tenth of its tiles. */
const LINE_STEPS = 10;

/**
 * A job's progress on stderr. On a terminal: one line redrawn in place (status, then a bar over the
 * tiles). Anywhere else (a pipe, a CI log): plain lines, one per status change and one per tenth of
 * the tiles, so a log shows progress without carriage returns and without a line per poll.
 */
export class Progress {
  #status = "";
  #drawn = "";
  #step = -1;

  constructor(
    private readonly stream: TextOut,
    private readonly label: string,
  ) {}

  status(status: string): void {
    if (status === this.#status) return;
    this.#status = status;
    if (this.stream.isTTY) this.#draw(`${this.label} ${status}`);
    else this.stream.write(`${this.label}: ${status}\n`);
  }

  tiles(done: number, total: number): void {
    const fraction = total <= 0 ? 1 : Math.min(1, done / total);
    if (this.stream.isTTY) {
      const filled = Math.round(fraction * BAR_WIDTH);
      this.#draw(`${this.label} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${done}/${total} tiles`);
      return;
    }
    const step = Math.floor(fraction * LINE_STEPS);
    if (step <= this.#step) return;
    this.#step = step;
    this.stream.write(`${this.label}: ${step * (100 / LINE_STEPS)}% (${done}/${total} tiles)\n`);
  }

  /** Ends the display: on a terminal, the line is cleared for what comes next (the result, or an error). */
  clear(): void {
    if (this.stream.isTTY && this.#drawn) this.stream.write("\r\x1b[2K");
    this.#drawn = "";
  }

  #draw(line: string): void {
    // Redraw only when the line changes: polling every half second must not mean a write each time.
    if (line === this.#drawn) return;
    this.#drawn = line;
    this.stream.write(`\r\x1b[2K${line}`);
  }
}
