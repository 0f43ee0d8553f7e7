import ipaddr from "ipaddr.js";

/**
 * Which hosts the worker may reach, judged as written: a Worker cannot resolve DNS. The rules for
 * outbound URLs (source-policy.ts) rest on this one verdict, `hostRefusal`.
 *
 * - IP literals in every spelling are refused unless public. ipaddr.js reads them: every IPv4 form
 *   inet_aton reads (decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, shortened `127.1`; the
 *   WHATWG URL parser already makes dotted decimal of them, so the rule does not rest on the parser)
 *   and IPv6 with or without an IPv4 tail. Refused: IANA's special-purpose IPv4 blocks (RFC 1918,
 *   loopback, link-local with the cloud metadata address 169.254.169.254, CGNAT, "this network",
 *   benchmarking, documentation, multicast, reserved, broadcast); for IPv6 everything outside global
 *   unicast 2000::/3 (loopback, unspecified, ULA, link- and site-local, multicast) plus special
 *   blocks inside it (Teredo, documentation, ...). IPv6 forms that embed an IPv4 address
 *   (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged
 *   by that address.
 * - Names that are local by construction: `localhost` and `*.localhost`, single-label names
 *   (`metadata`, `intranet`), and the suffixes `.local`, `.localdomain`, `.internal`
 *   (`metadata.google.internal`), `.home.arpa`, `.arpa`, `.lan`, `.home`, `.corp`, `.intranet`,
 *   `.private`; and public wildcard-DNS services that answer any IP on request (`nip.io`,
 *   `sslip.io`, `xip.io`, `localtest.me`, `lvh.me`, `vcap.me`).
 *
 * What this cannot see: a public name whose DNS points at a private address. On Cloudflare that
 * is harmless (subrequests leave from Cloudflare's network, which does not reach private networks);
 * anywhere else (wrangler dev, a self-hosted workerd) run the worker where its outbound traffic
 * cannot reach private networks either.
 */
const LOCAL_SUFFIXES = ["localhost", "local", "localdomain", "internal", "arpa", "lan", "home", "corp", "intranet", "private"];
const WILDCARD_DNS = ["nip.io", "sslip.io", "xip.io", "localtest.me", "lvh.me", "vcap.me"];

/** IANA's special-purpose IPv4 blocks that are not reachable public unicast. */
const NON_PUBLIC_V4 = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8",
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8",
  "169.254.0.0/16", // link-local, cloud metadata
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, broadcast
].map((cidr) => ipaddr.IPv4.parseCIDR(cidr));

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");

/** Special blocks inside 2000::/3 that are not ordinary public unicast. */
const NON_PUBLIC_V6 = [
  "2001::/23", // IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
  "2001:db8::/32", // documentation
  "3fff::/20", // documentation (RFC 9637)
  "5f00::/16", // SRv6 SIDs
].map((cidr) => ipaddr.IPv6.parseCIDR(cidr));

/** IPv6 blocks that carry an IPv4 address in their last 32 bits (IPv4-mapped is asked of ipaddr.js itself). */
const NAT64 = ipaddr.IPv6.parseCIDR("64:ff9b::/96");
const SIX_TO_FOUR = ipaddr.IPv6.parseCIDR("2002::/16");

const v4From = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);

function isPublicIpv4(address: ipaddr.IPv4): boolean {
  return !NON_PUBLIC_V4.some((range) => address.match(range));
}

function isPublicIpv6(address: ipaddr.IPv6): boolean {
  const [, g1 = 0, g2 = 0, , , g5 = 0, g6 = 0, g7 = 0] = address.parts;
  const firstFiveZero = address.parts.slice(0, 5).every((g) => g === 0);
  // Forms that carry an IPv4 address are as public as that address.
  if (address.isIPv4MappedAddress()) return isPublicIpv4(address.toIPv4Address());
  if (firstFiveZero && g5 === 0 && (g6 !== 0 || g7 > 1)) return isPublicIpv4(v4From(g6, g7)); // IPv4-compatible
  if (address.match(NAT64)) return isPublicIpv4(v4From(g6, g7));
  if (address.match(SIX_TO_FOUR)) return isPublicIpv4(v4From(g1, g2));
  if (!address.match(GLOBAL_UNICAST_V6)) return false; // ::, ::1, fc00::/7, fe80::/10, ff00::/8, ...
  return !NON_PUBLIC_V6.some((range) => address.match(range));
}

/** An IPv4 address in any form inet_aton reads, as a 32-bit number; null when it is not one. */
export function ipv4Of(host: string): number | null {
  if (!ipaddr.IPv4.isValid(host)) return null;
  return ipaddr.IPv4.parse(host).toByteArray().reduce((sum, byte) => sum * 256 + byte, 0);
}

/** An IPv6 literal (without brackets) as eight 16-bit groups; null when it is not one. */
export function ipv6Of(host: string): number[] | null {
  return ipaddr.IPv6.isValid(host) ? ipaddr.IPv6.parse(host).parts : null;
}

/** Why a host may not be reached, or null when it may. `host` is URL.hostname. */
export function hostRefusal(host: string): string | null {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name.startsWith("[")) {
    const literal = name.slice(1, -1);
    if (!ipaddr.IPv6.isValid(literal)) return "an IPv6 literal that cannot be read";
    return isPublicIpv6(ipaddr.IPv6.parse(literal)) ? null : "a private, loopback, link-local or reserved IPv6 address";
  }
  // The WHATWG parser treats a host whose last label is numeric as IPv4; so does this check.
  const lastLabel = name.split(".").at(-1) ?? "";
  if (/^(?:0x[0-9a-f]*|[0-9]+)$/i.test(lastLabel)) {
    if (!ipaddr.IPv4.isValid(name)) return "an IPv4 literal that cannot be read";
    return isPublicIpv4(ipaddr.IPv4.parse(name)) ? null : "a private, loopback, link-local or reserved IPv4 address";
  }
  if (!name.includes(".")) return "a single-label (intranet) host name";
  if (LOCAL_SUFFIXES.some((suffix) => name === suffix || name.endsWith(`.${suffix}`))) return "a local or internal host name";
  if (WILDCARD_DNS.some((service) => name === service || name.endsWith(`.${service}`))) return "a wildcard-DNS name that can point anywhere";
  return null;
}
