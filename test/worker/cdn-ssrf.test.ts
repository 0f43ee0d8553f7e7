import { describe, expect, it } from "vitest";
import { hostRefusal, ipv4Of, ipv6Of } from "../../worker/src/security/address";
import { BASE } from "./helpers";
import { ORIGIN, cdnKey, cdnUrl, get, sourceUrl } from "./cdn";
import { fixtures } from "./fixtures/images";
import { png } from "./images";
import { fetched, redirect, serve, uniquePath } from "./origin";

/** The host as the worker sees it: what the WHATWG URL parser makes of it. */
const hostOf = (url: string) => new URL(url).hostname;

describe("source hosts the worker refuses to fetch", () => {
  it.each([
    ["loopback IPv4", "https://127.0.0.1/"],
    ["loopback in decimal", "https://2130706433/"],
    ["loopback in octal", "https://0177.0.0.1/"],
    ["loopback in hex", "https://0x7f.0.0.1/"],
    ["loopback shortened", "https://127.1/"],
    ["private 10/8", "https://10.1.2.3/"],
    ["private 172.16/12", "https://172.31.255.255/"],
    ["private 192.168/16", "https://192.168.0.10/"],
    ["link-local (cloud metadata)", "https://169.254.169.254/"],
    ["carrier-grade NAT", "https://100.64.0.1/"],
    ["this network", "https://0.0.0.0/"],
    ["broadcast", "https://255.255.255.255/"],
    ["IPv6 loopback", "https://[::1]/"],
    ["IPv6 unspecified", "https://[::]/"],
    ["IPv4-mapped IPv6 of loopback", "https://[::ffff:127.0.0.1]/"],
    ["IPv4-mapped IPv6 of metadata, in hex", "https://[::ffff:a9fe:a9fe]/"],
    ["IPv4-compatible IPv6 of a private address", "https://[::10.0.0.1]/"],
    ["NAT64 of a private address", "https://[64:ff9b::10.0.0.1]/"],
    ["6to4 of loopback", "https://[2002:7f00:1::]/"],
    ["IPv6 unique local", "https://[fd00::1]/"],
    ["IPv6 link-local", "https://[fe80::1]/"],
    ["IPv6 multicast", "https://[ff02::1]/"],
    ["Teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"],
    ["localhost", "https://localhost/"],
    ["a name under localhost", "https://api.localhost/"],
    ["a trailing-dot localhost", "https://localhost./"],
    ["a single-label name", "https://metadata/"],
    ["an .internal name", "https://metadata.google.internal/"],
    ["a .local name", "https://printer.local/"],
    ["a home.arpa name", "https://nas.home.arpa/"],
    ["a wildcard-DNS name", "https://127.0.0.1.nip.io/"],
  ])("refuses %s", (_, url) => {
    expect(hostRefusal(hostOf(url))).not.toBeNull();
  });

  it.each([
    ["a public name", "https://images.example.com/"],
    ["a public IPv4", "https://93.184.215.14/"],
    ["a public IPv6", "https://[2606:4700::6810:84e5]/"],
    ["IPv4-mapped IPv6 of a public address", "https://[::ffff:93.184.215.14]/"],
  ])("allows %s", (_, url) => {
    expect(hostRefusal(hostOf(url))).toBeNull();
  });

  it("reads every IPv4 spelling inet_aton reads, without the URL parser's help", () => {
    const loopback = 0x7f000001;
    expect([ipv4Of("127.0.0.1"), ipv4Of("2130706433"), ipv4Of("0177.0.0.1"), ipv4Of("0x7f.1"), ipv4Of("127.1"), ipv4Of("0x7F000001")]).toEqual(Array(6).fill(loopback));
    expect(ipv4Of("256.0.0.1")).toBeNull();
    expect(hostRefusal("0x7f.1")).not.toBeNull();
    expect(hostRefusal("017700000001")).not.toBeNull();
  });

  it("reads IPv6 with an embedded IPv4 tail", () => {
    expect(ipv6Of("::ffff:127.0.0.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001]);
    expect(ipv6Of("1:2:3:4:5:6:7:8:9")).toBeNull();
  });
});

/** A key listing `origins`, and a signed URL for `source` under it. */
async function urlFor(source: string, origins: string[] = [ORIGIN], options = {}): Promise<string> {
  return cdnUrl(await cdnKey({ cdnOrigins: origins }), source, { format: "png", ...options });
}

async function expectCdnError(response: Response, status: number, code: string): Promise<void> {
  expect({ status: response.status, reason: response.headers.get("x-hvar-cdn") }).toEqual({ status, reason: `err=${code}` });
  await response.body?.cancel();
}

describe("CDN sources at private addresses", () => {
  it("are refused even when the key lists them, and never fetched", async () => {
    const source = `https://10.0.0.1${uniquePath()}/x.png`;
    await expectCdnError(await get(await urlFor(source, ["https://10.0.0.1"])), 403, "private_source");
    expect(await fetched("https://10.0.0.1/")).toEqual([]);
  });

  it("are refused when the key lists them in decimal form", async () => {
    const source = `https://2130706433${uniquePath()}/x.png`;
    await expectCdnError(await get(await urlFor(source, ["https://2130706433"])), 403, "private_source");
    expect(await fetched("https://127.0.0.1/")).toEqual([]);
  });

  it("are refused as IPv4-mapped IPv6", async () => {
    const source = `https://[::ffff:169.254.169.254]${uniquePath()}/latest`;
    await expectCdnError(await get(await urlFor(source, ["https://[::ffff:169.254.169.254]"])), 403, "private_source");
  });

  it("are refused by name (localhost, .internal)", async () => {
    for (const origin of ["https://localhost", "https://metadata.google.internal"]) {
      await expectCdnError(await get(await urlFor(`${origin}${uniquePath()}/x.png`, [origin])), 403, "private_source");
      expect(await fetched(`${origin}/`)).toEqual([]);
    }
  });
});

describe("CDN source redirects", () => {
  it("are followed to public https hosts", async () => {
    const source = sourceUrl("moved.png");
    const target = sourceUrl("photo.png", "https://storage.example");
    await redirect(source, target, 301);
    await serve(target, await png(40, 30));
    const response = await get(await urlFor(source));
    expect(response.status).toBe(200);
    expect(await fetched(target)).toHaveLength(1);
  });

  it("to a private address are refused, and the private address is never fetched", async () => {
    const source = sourceUrl("moved.png");
    const target = `https://169.254.169.254${uniquePath()}/latest/meta-data/`;
    await redirect(source, target);
    await expectCdnError(await get(await urlFor(source)), 403, "private_source");
    expect(await fetched(source)).toHaveLength(1);
    expect(await fetched("https://169.254.169.254/")).toEqual([]);
  });

  it("to a private address given relatively are refused", async () => {
    const source = sourceUrl("moved.png");
    await redirect(source, "//127.0.0.1/admin");
    await expectCdnError(await get(await urlFor(source)), 403, "private_source");
    expect(await fetched("https://127.0.0.1/")).toEqual([]);
  });

  it("to plain http are refused", async () => {
    const source = sourceUrl("moved.png");
    const target = sourceUrl("photo.png", "http://storage.example");
    await redirect(source, target);
    await expectCdnError(await get(await urlFor(source)), 403, "insecure_source");
    expect(await fetched(target)).toEqual([]);
  });

  it("stop after three", async () => {
    const hops = [sourceUrl("1.png"), sourceUrl("2.png"), sourceUrl("3.png"), sourceUrl("4.png"), sourceUrl("5.png")];
    for (let i = 0; i < hops.length - 1; i++) await redirect(hops[i] ?? "", hops[i + 1] ?? "", 307);
    await serve(hops[4] ?? "", await png(40, 30));
    await expectCdnError(await get(await urlFor(hops[0] ?? "")), 502, "source_too_many_redirects");
    expect(await fetched(hops[4] ?? "")).toEqual([]);
  });
});

describe("CDN source origins", () => {
  it("must be listed for the key", async () => {
    const source = sourceUrl("photo.png", "https://unlisted.example");
    await serve(source, await png(40, 30));
    await expectCdnError(await get(await urlFor(source)), 403, "source_not_allowed");
    expect(await fetched(source)).toEqual([]);
  });

  it("may be listed as a path prefix, which then bounds the paths", async () => {
    const inside = `${ORIGIN}/public${uniquePath()}/a.png`;
    const outside = `${ORIGIN}/private${uniquePath()}/a.png`;
    await serve(inside, await png(40, 30));
    await serve(outside, await png(40, 30));
    const issued = await cdnKey({ cdnOrigins: [`${ORIGIN}/public/`] });
    expect((await get(await cdnUrl(issued, inside, { format: "png" }))).status).toBe(200);
    await expectCdnError(await get(await cdnUrl(issued, outside, { format: "png" })), 403, "source_not_allowed");
  });

  it("must be https", async () => {
    const source = sourceUrl("photo.png", "http://images.example");
    await serve(source, await png(40, 30));
    await expectCdnError(await get(await urlFor(source, ["http://images.example"])), 403, "insecure_source");
    expect(await fetched(source)).toEqual([]);
  });

  it("may be plain http when ALLOW_INSECURE_ORIGINS lists them (local development)", async () => {
    const source = sourceUrl("photo.png", "http://dev-origin.example");
    await serve(source, await png(40, 30));
    expect((await get(await urlFor(source, ["http://dev-origin.example"]))).status).toBe(200);
  });

  it("use the default port unless the listed origin names another", async () => {
    const source = sourceUrl("photo.png", "https://images.example:8443");
    await serve(source, await png(40, 30));
    expect((await get(await urlFor(source, ["https://images.example:8443"]))).status).toBe(200);
    const redirected = sourceUrl("moved.png");
    await redirect(redirected, sourceUrl("photo.png", "https://storage.example:8080"));
    await expectCdnError(await get(await urlFor(redirected)), 403, "source_not_allowed");
  });

  it("stay the key's first origin for path sources that look like another host", async () => {
    const issued = await cdnKey({ cdnAllowUnsigned: true });
    const path = `${uniquePath()}/x.png`;
    const response = await get(`${BASE}/cdn/${issued.key.id}/unsigned/format=png//evil.example${path}`);
    await expectCdnError(response, 404, "source_not_found");
    expect(await fetched(`${ORIGIN}//evil.example${path}`)).toHaveLength(1);
    expect(await fetched("https://evil.example/")).toEqual([]);
  });
});

describe("CDN source bodies", () => {
  it("are refused past the byte limit (Content-Length)", async () => {
    const source = sourceUrl();
    await serve(source, new Uint8Array(300 * 1024));
    await expectCdnError(await get(await urlFor(source)), 413, "source_too_large");
  });

  it("are refused past the byte limit without Content-Length", async () => {
    const source = sourceUrl();
    await serve(source, new Uint8Array(300 * 1024), { chunked: true });
    await expectCdnError(await get(await urlFor(source)), 413, "source_too_large");
  });

  it("are given up after the time limit", async () => {
    const source = sourceUrl();
    await serve(source, await png(40, 30), { delayMs: 1500 });
    await expectCdnError(await get(await urlFor(source)), 504, "source_timeout");
  });

  it("are typed by their magic bytes: HTML labelled image/png is refused", async () => {
    const source = sourceUrl();
    await serve(source, "<html><body>not an image</body></html>", { headers: { "content-type": "image/png" } });
    await expectCdnError(await get(await urlFor(source)), 415, "unsupported_media_type");
  });

  it("are typed by their magic bytes: a JPEG labelled text/plain is accepted", async () => {
    const source = sourceUrl("photo.jpg");
    await serve(source, fixtures.jpegBaseline, { headers: { "content-type": "text/plain" } });
    expect((await get(await urlFor(source))).status).toBe(200);
  });

  it("that do not exist answer 404", async () => {
    await expectCdnError(await get(await urlFor(sourceUrl("missing.png"))), 404, "source_not_found");
  });
});
