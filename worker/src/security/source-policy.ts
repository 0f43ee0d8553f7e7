import { DomainError } from "@hvar/contract";
import { hostRefusal } from "./address";

/**
 * Which URLs the worker may fetch: the SSRF rules, in one place, checked before any fetch and again
 * for every redirect hop. CDN sources are judged here (checkSource, checkHop); webhook URLs by the
 * same address rules (hopRefusal, used by webhook-url-policy.ts).
 *
 * - The host must be public, as address.ts judges it (IP literals in every spelling, local names,
 *   wildcard DNS).
 * - Only https, on the default port or the port of a listed origin, without credentials.
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

const DEFAULT_PORTS: Record<string, string> = { "https:": "443", "http:": "80" };

const refuse = (code: string, title: string, detail?: string) =>
  new DomainError({ kind: "forbidden", code, title, ...(detail === undefined ? {} : { detail }) });

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
