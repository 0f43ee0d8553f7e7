import { ProblemError } from "../http/problem";

/**
 * Which source URLs the worker may fetch: the SSRF rules, in one place, checked before any fetch
 * and again for every redirect hop. Webhook URLs are judged by the same rules (hopRefusal, used by
 * webhooks/url-policy.ts).
 *
 * A Worker cannot resolve DNS, so these are checks of the URL's host as written:
 * - IP literals in every spelling are refused unless public. The WHATWG URL parser already turns
 *   decimal, octal, hex and shortened IPv4 forms (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`)
 *   into dotted decimal, and compresses IPv6; `ipv4Of` parses those forms again itself, so the
 *   rule does not rest on the parser. Refused: RFC 1918, loopback, link-local (cloud metadata
 *   169.254.169.254), CGNAT, "this network", benchmarking, documentation, multicast, reserved,
 *   broadcast; for IPv6 everything outside global unicast 2000::/3 (loopback, unspecified, ULA,
 *   link- and site-local, multicast) plus special blocks inside it (Teredo, documentation, ...),
 *   and IPv6 forms that embed an IPv4 address (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible,
 *   NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that address.
 * - Names that are local by construction: `localhost` and `*.localhost`, single-label names
 *   (`metadata`, `intranet`), and the suffixes `.local`, `.localdomain`, `.internal`
 *   (`metadata.google.internal`), `.home.arpa`, `.arpa`, `.lan`, `.home`, `.corp`, `.intranet`,
 *   `.private`; and public wildcard-DNS services that answer any IP on request (`nip.io`,
 *   `sslip.io`, `xip.io`, `localtest.me`, `lvh.me`, `vcap.me`).
 * - Only https, on the default port or the port of a listed origin.
 *
 * What this cannot see: a public name whose DNS points at a private address. On Cloudflare that
 * is harmless (subrequests leave from Cloudflare's network, which does not reach private networks);
 * anywhere else (wrangler dev, a self-hosted workerd) run the worker where its outbound traffic
 * cannot reach private networks either.
 *
 * ALLOW_INSECURE_ORIGINS (local development and end-to-end tests only) lists exact origins that
 * are exempt from the https and public-address rules, e.g. a page server on http://127.0.0.1.
 */
export interface SourcePolicy {
  /** The key's CDN origins: origins or URL prefixes (`https://example.com/images/`). */
  allowed: readonly string[];
  /** Exact origins exempt from the https and public-address rules (ALLOW_INSECURE_ORIGINS). */
  insecure: readonly string[];
}

const LOCAL_SUFFIXES = ["localhost", "local", "localdomain", "internal", "arpa", "lan", "home", "corp", "intranet", "private"];
const WILDCARD_DNS = ["nip.io", "sslip.io", "xip.io", "localtest.me", "lvh.me", "vcap.me"];
const DEFAULT_PORTS: Record<string, string> = { "https:": "443", "http:": "80" };

const refuse = (code: string, title: string, detail?: string) =>
  new ProblemError({ status: 403, code, title, ...(detail === undefined ? {} : { detail }) });

/**
 * An IPv4 address in any form inet_aton accepts (1 to 4 parts, each decimal, octal with a leading
 * 0, or hex with 0x; the last part fills the remaining bytes), as a 32-bit number; null otherwise.
 */
export function ipv4Of(host: string): number | null {
  const parts = host.split(".");
  if (parts.length > 4 || parts.some((p) => p === "")) return null;
  const values: number[] = [];
  for (const part of parts) {
    const match = /^(?:0x([0-9a-f]*)|(0[0-7]*)|([1-9][0-9]*))$/i.exec(part);
    if (!match) return null;
    const [, hex, octal, decimal] = match;
    const value = hex !== undefined ? (hex === "" ? 0 : parseInt(hex, 16)) : octal !== undefined ? parseInt(octal, 8) : Number(decimal);
    values.push(value);
  }
  const last = values.pop() ?? 0;
  if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return null;
  return values.reduce((sum, v, i) => sum + v * 2 ** (8 * (3 - i)), 0) + last;
}

const cidr4 = (a: number, b: number, c: number, d: number, bits: number) => ({ base: ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, bits });

/** IANA's special-purpose IPv4 blocks that are not reachable public unicast. */
const NON_PUBLIC_V4 = [
  cidr4(0, 0, 0, 0, 8), // "this network"
  cidr4(10, 0, 0, 0, 8),
  cidr4(100, 64, 0, 0, 10), // carrier-grade NAT
  cidr4(127, 0, 0, 0, 8),
  cidr4(169, 254, 0, 0, 16), // link-local, cloud metadata
  cidr4(172, 16, 0, 0, 12),
  cidr4(192, 0, 0, 0, 24),
  cidr4(192, 0, 2, 0, 24),
  cidr4(192, 88, 99, 0, 24),
  cidr4(192, 168, 0, 0, 16),
  cidr4(198, 18, 0, 0, 15),
  cidr4(198, 51, 100, 0, 24),
  cidr4(203, 0, 113, 0, 24),
  cidr4(224, 0, 0, 0, 4), // multicast
  cidr4(240, 0, 0, 0, 4), // reserved, broadcast
];

export function isPublicIpv4(address: number): boolean {
  return !NON_PUBLIC_V4.some(({ base, bits }) => (address >>> (32 - bits)) === (base >>> (32 - bits)));
}

/** An IPv6 literal (without brackets) as eight 16-bit groups; null when it is not one. */
export function ipv6Of(host: string): number[] | null {
  let text = host.toLowerCase();
  // The last 32 bits may be written as dotted IPv4 ("::ffff:127.0.0.1").
  const tail: number[] = [];
  if (text.includes(".")) {
    const lastColon = text.lastIndexOf(":");
    const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.slice(lastColon + 1))?.slice(1).map(Number);
    if (!v4 || v4.some((b) => b > 255)) return null;
    const [a = 0, b = 0, c = 0, d = 0] = v4;
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return null;
  const zeros = new Array<number>(8 - known).fill(0);
  return [...head.map((g) => parseInt(g, 16)), ...zeros, ...rest.map((g) => parseInt(g, 16)), ...tail];
}

const v4Of = (hi: number, lo: number) => ((hi << 16) | lo) >>> 0;

function startsWith(groups: number[], prefix: number[], bits: number): boolean {
  for (let i = 0; bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if (((groups[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Special blocks inside 2000::/3 that are not ordinary public unicast. */
const NON_PUBLIC_V6: [number[], number][] = [
  [[0x2001, 0x0000], 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
  [[0x2001, 0x0db8], 32], // documentation
  [[0x3fff, 0x0000], 20], // documentation (RFC 9637)
  [[0x5f00], 16], // SRv6 SIDs
];

export function isPublicIpv6(groups: number[]): boolean {
  const [g0 = 0, , , , , g5 = 0, g6 = 0, g7 = 0] = groups;
  const firstFiveZero = groups.slice(0, 5).every((g) => g === 0);
  // Forms that carry an IPv4 address are as public as that address.
  if (firstFiveZero && g5 === 0xffff) return isPublicIpv4(v4Of(g6, g7)); // IPv4-mapped
  if (firstFiveZero && g5 === 0 && (g6 !== 0 || g7 > 1)) return isPublicIpv4(v4Of(g6, g7)); // IPv4-compatible
  if (startsWith(groups, [0x0064, 0xff9b], 96)) return isPublicIpv4(v4Of(g6, g7)); // NAT64
  if (g0 === 0x2002) return isPublicIpv4(v4Of(groups[1] ?? 0, groups[2] ?? 0)); // 6to4
  if (!startsWith(groups, [0x2000], 3)) return false; // ::, ::1, fc00::/7, fe80::/10, ff00::/8, ...
  return !NON_PUBLIC_V6.some(([prefix, bits]) => startsWith(groups, prefix, bits));
}

/** Why a host name may not be fetched, or null when it may. `host` is URL.hostname. */
export function hostRefusal(host: string): string | null {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name.startsWith("[")) {
    const groups = ipv6Of(name.slice(1, -1));
    if (!groups) return "an IPv6 literal that cannot be read";
    return isPublicIpv6(groups) ? null : "a private, loopback, link-local or reserved IPv6 address";
  }
  // The WHATWG parser treats a host whose last label is numeric as IPv4; so does this check.
  const lastLabel = name.split(".").at(-1) ?? "";
  if (/^(?:0x[0-9a-f]*|[0-9]+)$/i.test(lastLabel)) {
    const address = ipv4Of(name);
    if (address === null) return "an IPv4 literal that cannot be read";
    return isPublicIpv4(address) ? null : "a private, loopback, link-local or reserved IPv4 address";
  }
  if (!name.includes(".")) return "a single-label (intranet) host name";
  if (LOCAL_SUFFIXES.some((suffix) => name === suffix || name.endsWith(`.${suffix}`))) return "a local or internal host name";
  if (WILDCARD_DNS.some((service) => name === service || name.endsWith(`.${service}`))) return "a wildcard-DNS name that can point anywhere";
  return null;
}

/** The path a listed CDN origin entry covers ("/" for a bare origin, "/images/" for a prefix). */
function prefixPath(entry: URL): string {
  return entry.pathname.endsWith("/") ? entry.pathname : `${entry.pathname}/`;
}

function parsedEntries(policy: SourcePolicy): URL[] {
  return policy.allowed.flatMap((entry) => (URL.canParse(entry) ? [new URL(entry)] : []));
}

/** Where a path source points: the key's first listed origin (its scheme, host and port). */
export function resolvePathSource(path: string, policy: SourcePolicy): string {
  const first = parsedEntries(policy)[0];
  if (!first) throw refuse("no_cdn_origins", "This API key lists no CDN origins", "Add cdnOrigins to the key (admin API).");
  // Concatenation, not new URL(path, base): a path such as "//evil.example/x" must stay a path.
  const url = new URL(first.origin + path);
  url.hash = "";
  return url.href;
}

/** Which address rule a URL breaks, and how (for the problem's detail). */
export interface HopRefusal {
  rule: "scheme" | "credentials" | "insecure" | "private" | "port";
  detail: string;
}

/**
 * The address rules, as a verdict rather than a problem, so that every outbound URL the worker is
 * handed (CDN sources, webhook URLs) is judged by the same rules and each caller words its own
 * answer: http(s), https unless its exact origin is in ALLOW_INSECURE_ORIGINS, no credentials, a
 * public host, the default port unless `policy.allowed` lists the origin.
 */
export function hopRefusal(url: URL, policy: SourcePolicy): HopRefusal | null {
  if (url.protocol !== "https:" && url.protocol !== "http:") return { rule: "scheme", detail: `${url.protocol} is not https.` };
  if (url.username || url.password) return { rule: "credentials", detail: "The URL carries credentials." };
  if (policy.insecure.includes(url.origin)) return null;
  if (url.protocol !== "https:") return { rule: "insecure", detail: `${url.origin} is plain http.` };
  const refusal = hostRefusal(url.hostname);
  if (refusal) return { rule: "private", detail: `${url.hostname} is ${refusal}.` };
  const port = url.port || DEFAULT_PORTS[url.protocol];
  const listedPort = parsedEntries(policy).some((entry) => entry.origin === url.origin);
  if (port !== DEFAULT_PORTS[url.protocol] && !listedPort) return { rule: "port", detail: `Port ${port}.` };
  return null;
}

/** The rules one hop of a fetch must pass, the first URL and every redirect target alike (hopRefusal). */
export function checkHop(url: URL, policy: SourcePolicy): void {
  const refusal = hopRefusal(url, policy);
  switch (refusal?.rule) {
    case undefined:
      return;
    case "scheme":
      throw refuse("source_not_allowed", "Sources are fetched over https only");
    case "credentials":
      throw refuse("source_not_allowed", "Source URLs must not carry credentials");
    case "insecure":
      throw refuse("insecure_source", "Sources are fetched over https only", refusal.detail);
    case "private":
      throw refuse("private_source", "The source host is not a public address", refusal.detail);
    case "port":
      throw refuse("source_not_allowed", "Sources use the default port unless their origin is listed", refusal.detail);
  }
}

/** True when the URL lies under one of the key's CDN origin entries (origin, and path prefix if any). */
export function isListed(url: URL, allowed: readonly string[]): boolean {
  return parsedEntries({ allowed, insecure: [] }).some((entry) => entry.origin === url.origin && url.pathname.startsWith(prefixPath(entry)));
}

/** The first URL: listed for this key, and a good hop. */
export function checkSource(source: string, policy: SourcePolicy): URL {
  const url = new URL(source);
  if (!isListed(url, policy.allowed)) {
    throw refuse("source_not_allowed", "The source is not under one of this key's CDN origins", `${url.origin}${url.pathname} is not listed.`);
  }
  checkHop(url, policy);
  return url;
}
