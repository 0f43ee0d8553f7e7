import { describe, expect, it } from "vitest";
import { Progress } from "../../packages/cli/src/progress";

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (chunk: string) => chunks.push(chunk), text: () => chunks.join("") };
}

describe("progress", () => {
  it("off a terminal, prints a line per status and per tenth of the tiles, however often it is told", () => {
    const out = capture(false);
    const progress = new Progress(out, "photo.jpg");
    progress.status("queued");
    progress.status("queued");
    progress.status("running");
    for (let done = 0; done <= 40; done++) progress.tiles(done, 40);
    progress.clear();
    expect(out.text()).toBe(
      [
        "photo.jpg: queued",
        "photo.jpg: running",
        ...[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((percent) => `photo.jpg: ${percent}% (${(percent * 40) / 100}/40 tiles)`),
        "",
      ].join("\n"),
    );
  });

  it("off a terminal, skips the tenths a poll jumped over", () => {
    const out = capture(false);
    const progress = new Progress(out, "a.png");
    progress.tiles(3, 10);
    progress.tiles(9, 10);
    expect(out.chunks).toEqual(["a.png: 30% (3/10 tiles)\n", "a.png: 90% (9/10 tiles)\n"]);
  });

  it("on a terminal, redraws one line in place, only when it changes, and clears it for the result", () => {
    const out = capture(true);
    const progress = new Progress(out, "a.png");
    progress.status("running");
    progress.tiles(5, 10);
    progress.tiles(5, 10);
    progress.clear();
    expect(out.chunks).toEqual(["\r\x1b[2Ka.png running", `\r\x1b[2Ka.png [${"#".repeat(15)}${"-".repeat(15)}] 5/10 tiles`, "\r\x1b[2K"]);
  });
});
