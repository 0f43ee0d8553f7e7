import { describe, expect, it } from "vitest";
import { extensionOf, isUrlInput, outputName, stemOf } from "../../packages/cli/src/naming";

describe("output names", () => {
  it("are <input-stem>.x<scale>.<ext>, the extension the output format's name", () => {
    expect(outputName("photo.jpg", 2, "image/png")).toBe("photo.x2.png");
    expect(outputName("dir/holiday.photo.JPG", 4, "image/webp")).toBe("holiday.photo.x4.webp");
    expect(outputName("scan.png", 1, "image/jpeg")).toBe("scan.x1.jpeg");
    expect(outputName("scan.png", 2, "image/avif; charset=binary")).toBe("scan.x2.avif");
  });

  it("take a URL's last path segment, decoded, without its query", () => {
    expect(outputName("https://img.example/cats/tom.jpg?v=2#top", 2, "image/png")).toBe("tom.x2.png");
    expect(stemOf("https://img.example/cats/my%20cat.jpeg")).toBe("my cat");
    expect(stemOf("https://img.example/")).toBe("image");
  });

  it("never leave the output folder nor hold characters some systems refuse", () => {
    expect(stemOf("https://img.example/a%2F..%2F..%2Fetc.png")).toBe("etc");
    expect(stemOf("https://img.example/a%5C..%5Cetc.png")).toBe("a_.._etc");
    expect(stemOf("https://img.example/..")).toBe("image");
    expect(stemOf("https://img.example/what%3F%22.png")).toBe("what__");
    expect(stemOf("noext")).toBe("noext");
    expect(stemOf(".hidden")).toBe(".hidden");
  });

  it("fall back to the content type's subtype for a format hvar does not know", () => {
    expect(extensionOf("image/x-icon")).toBe("xicon");
    expect(extensionOf("")).toBe("bin");
  });

  it("tell URLs from files by their scheme", () => {
    expect(isUrlInput("https://img.example/a.png")).toBe(true);
    expect(isUrlInput("HTTP://img.example/a.png")).toBe(true);
    expect(isUrlInput("https.png")).toBe(false);
  });
});
