import { describe, expect, it } from "vitest";
import { formatOptions, parseCdnPath, parseOptions, parseSource, urlSourceSegment } from "../../worker/src/cdn/grammar";
import { buildCdnUrl } from "../../worker/src/cdn/url-builder";

const KEY = "key_abcdefghijklmnopqrst";
const SIG = "A".repeat(43);
const canonical = (segment: string) => formatOptions(parseOptions(segment));

describe("CDN options: valid", () => {
  it("fill in defaults: scale 2, format auto, quality 85", () => {
    expect(canonical("scale=2")).toBe("scale=2,format=auto,quality=85");
  });

  it("read every option", () => {
    expect(parseOptions("scale=4,cleanup=0.5,format=webp,quality=70,width=800,height=600,fit=cover,expires=1900000000,onerror=redirect")).toEqual({
      scale: 4,
      cleanup: 0.5,
      format: "webp",
      quality: 70,
      width: 800,
      height: 600,
      fit: "cover",
      expires: 1900000000,
      onerror: "redirect",
    });
  });

  it("read a clean-up strength, or auto, the default where none is written", () => {
    expect(parseOptions("scale=2,cleanup=0").cleanup).toBe(0);
    expect(parseOptions("scale=2,cleanup=auto").cleanup).toBe("auto");
    expect(parseOptions("scale=2").cleanup).toBe("auto");
  });

  it("read denoise as the cleaned x1 alone", () => {
    expect(parseOptions("denoise").scale).toBe(1);
  });

  it("accept Cloudflare's short names", () => {
    expect(canonical("w=300,h=200,q=60,f=avif")).toBe(canonical("width=300,height=200,quality=60,format=avif"));
  });
});

describe("CDN options: normalization gives one form per result", () => {
  it("ignores the order options are written in", () => {
    expect(canonical("format=webp,scale=4")).toBe(canonical("scale=4,format=webp"));
  });

  it("writes what was left out as its default", () => {
    expect(canonical("format=auto")).toBe(canonical("scale=2,format=auto,quality=85"));
  });

  it("drops quality for PNG, where it means nothing", () => {
    expect(canonical("format=png,quality=40")).toBe("scale=2,format=png");
  });

  it("folds dpr into width and height", () => {
    expect(canonical("width=300,height=200,dpr=2")).toBe(canonical("width=600,height=400"));
  });

  it("spells jpg as jpeg and values in lower case", () => {
    expect(canonical("format=JPG")).toBe(canonical("format=jpeg"));
  });

  it("gives a size its default fit", () => {
    expect(canonical("width=300")).toBe("scale=2,format=auto,quality=85,width=300,fit=scale-down");
  });

  it("writes the default clean-up (auto) as nothing, so that URLs signed before the option keep their signatures", () => {
    expect(canonical("scale=2,cleanup=auto")).toBe("scale=2,format=auto,quality=85");
    expect(canonical("scale=2,cleanup=0.75")).toBe("scale=2,cleanup=0.75,format=auto,quality=85");
    expect(canonical("scale=2,cleanup=1")).toBe("scale=2,cleanup=1,format=auto,quality=85");
    expect(canonical("format=png,cleanup=0.50,scale=4")).toBe("scale=4,cleanup=0.5,format=png");
  });

  it("writes denoise as scale=1", () => {
    expect(canonical("denoise")).toBe(canonical("scale=1"));
  });

  it("reads percent-encoded options like plain ones", () => {
    expect(canonical("scale%3D4%2Cformat%3Dpng")).toBe(canonical("scale=4,format=png"));
  });
});

describe("CDN options: invalid", () => {
  const refused = (segment: string, message: RegExp) => expect(() => parseOptions(segment)).toThrow(message);

  it("refuses an unknown option", () => refused("scale=2,blur=3", /Unknown option "blur"/));
  it("refuses an option given twice", () => refused("scale=2,scale=4", /scale is given twice/));
  it("refuses an option given twice under its alias", () => refused("width=100,w=200", /width is given twice/));
  it("refuses denoise together with scale", () => refused("denoise,scale=4", /denoise is scale=1/));
  it("refuses a scale the model does not make", () => refused("scale=3", /scale must be 1, 2 or 4/));
  it("refuses a format it cannot write", () => refused("format=gif", /format must be one of/));
  it("refuses quality out of range", () => refused("quality=101", /quality must be a whole number from 1 to 100/));
  it("refuses a size that is not a whole number", () => refused("width=12.5", /width must be a whole number/));
  it("refuses a size above the limit", () => refused("width=9000", /width must be a whole number from 1 to 8192/));
  it("refuses a size that dpr pushes above the limit", () => refused("width=5000,dpr=2", /width must be/));
  it("refuses fit without a size", () => refused("fit=cover", /fit needs width or height/));
  it("refuses an option without a value", () => refused("scale", /needs a value/));
  it("refuses a value for a flag", () => refused("denoise=yes", /takes no value/));
  it("refuses an empty option", () => refused("scale=2,,format=png", /empty option/));
  it("refuses an empty options segment", () => refused("", /No options/));
  it("refuses an unknown onerror", () => refused("onerror=blank", /onerror must be one of redirect/));
  it("refuses a clean-up strength above 1", () => refused("cleanup=2", /cleanup must be from 0 to 1/));
  it("refuses a clean-up strength that is neither auto nor a number", () => refused("cleanup=strong", /cleanup must be auto or a number from 0 to 1/));
});

describe("CDN sources", () => {
  it("take a path with the request's query", () => {
    expect(parseSource("images/cat.jpg", "?v=2")).toEqual({ kind: "path", path: "/images/cat.jpg?v=2" });
  });

  it("take an absolute URL as url:<base64url>", () => {
    const segment = urlSourceSegment("https://Images.Example:443/a/../cat.jpg#top");
    expect(parseSource(segment, "")).toEqual({ kind: "url", url: "https://images.example/cat.jpg" });
  });

  it("refuse a url: source that is not base64url", () => {
    expect(() => parseSource("url:aGVsbG8=", "")).toThrow(/base64url/);
  });

  it("refuse a url: source with credentials", () => {
    const withCredentials = `url:${btoa("https://user:pw@images.example/x.png").replaceAll("=", "")}`;
    expect(() => parseSource(withCredentials, "")).toThrow(/credentials/);
  });

  it("refuse a url: source that is not http(s)", () => {
    expect(() => parseSource(`url:${btoa("file:///etc/passwd").replaceAll("=", "")}`, "")).toThrow(/http\(s\)/);
  });
});

describe("CDN paths", () => {
  it("split into key, signature, options and a source of several segments", () => {
    const parsed = parseCdnPath(`/cdn/${KEY}/${SIG}/scale=4/images/2026/cat.jpg`, "");
    expect(parsed).toMatchObject({ keyId: KEY, signature: SIG, options: { scale: 4 }, source: { kind: "path", path: "/images/2026/cat.jpg" } });
  });

  it("read the signature unsigned as none", () => {
    expect(parseCdnPath(`/cdn/${KEY}/unsigned/scale=2/cat.jpg`, "").signature).toBeNull();
  });

  it("refuse a path without a source", () => {
    expect(() => parseCdnPath(`/cdn/${KEY}/${SIG}/scale=2`, "")).toThrow(/\/cdn\/<key id>/);
  });

  it("refuse a malformed key id", () => {
    expect(() => parseCdnPath(`/cdn/nokey/${SIG}/scale=2/cat.jpg`, "")).toThrow(/key id/);
  });

  it("refuse a malformed signature", () => {
    expect(() => parseCdnPath(`/cdn/${KEY}/short/scale=2/cat.jpg`, "")).toThrow(/43 characters/);
  });
});

describe("buildCdnUrl (the customer helper)", () => {
  const base = { base: "https://img.example.com/", keyId: KEY, secret: "hvar_cdn_test" };

  it("writes normalized options, so equivalent inputs give the same URL", async () => {
    const a = await buildCdnUrl({ ...base, source: "https://images.example/cat.jpg", options: { format: "webp", scale: 4 } });
    const b = await buildCdnUrl({ ...base, source: "https://images.example/cat.jpg", options: { scale: 4, format: "webp", quality: 85 } });
    expect(a).toBe(b);
  });

  it("uses the short path form under the default origin", async () => {
    const url = await buildCdnUrl({ ...base, source: "https://images.example/cats/tom.jpg?v=3", defaultOrigin: "https://images.example", options: { scale: 2 } });
    expect(url).toMatch(new RegExp(`^https://img\\.example\\.com/cdn/${KEY}/[A-Za-z0-9_-]{43}/scale=2,format=auto,quality=85/cats/tom\\.jpg\\?v=3$`));
  });

  it("uses the url: form elsewhere", async () => {
    const url = await buildCdnUrl({ ...base, source: "https://other.example/tom.jpg" });
    const parsed = parseCdnPath(new URL(url).pathname, "");
    expect(parsed.source).toEqual({ kind: "url", url: "https://other.example/tom.jpg" });
  });

  it("writes unsigned without a secret", async () => {
    const url = await buildCdnUrl({ base: "https://img.example.com", keyId: KEY, source: "https://images.example/tom.jpg" });
    expect(new URL(url).pathname.split("/")[3]).toBe("unsigned");
  });

  it("turns expiresIn into expires", async () => {
    const url = await buildCdnUrl({ ...base, source: "https://images.example/tom.jpg", expiresIn: 60, now: 1_800_000_000_000 });
    expect(parseCdnPath(new URL(url).pathname, "").options.expires).toBe(1_800_000_060);
  });

  it("refuses options the worker would refuse", async () => {
    await expect(buildCdnUrl({ ...base, source: "https://images.example/tom.jpg", options: { scale: 3 } })).rejects.toThrow(/scale must be/);
  });
});
