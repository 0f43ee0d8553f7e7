import { CDN_PATH_PREFIX, UNSIGNED, URL_SOURCE_PREFIX, parseSource } from "../cdn/grammar";

/** What a logged line shows in place of a secret. */
export const REDACTED = "[redacted]";

/**
 * A request's path as logs may show it. Query strings are left out everywhere (result URLs carry
 * `sig`, a CDN path source carries its origin's query). A CDN URL carries its signature in the path
 * (`/cdn/<key id>/<signature>/...`): that segment is replaced, and a `url:` source, whose base64url
 * hides a whole URL with its query (an origin's own signature or token), is shown as its origin and
 * path only.
 *
 * @example loggablePath("https://x/cdn/key_1/AbC.../scale=2/url:aHR0...") // "/cdn/key_1/[redacted]/scale=2/url:https://origin/cat.jpg"
 */
export function loggablePath(url: string | URL): string {
  const { pathname } = typeof url === "string" ? new URL(url) : url;
  if (!pathname.startsWith(CDN_PATH_PREFIX)) return pathname;
  const [keyId = "", signature, options, ...source] = pathname.slice(CDN_PATH_PREFIX.length).split("/");
  const parts = [keyId];
  if (signature !== undefined) parts.push(signature === UNSIGNED ? UNSIGNED : REDACTED);
  if (options !== undefined) parts.push(options);
  if (source.length > 0) parts.push(loggableSource(source.join("/")));
  return CDN_PATH_PREFIX + parts.join("/");
}

function loggableSource(rest: string): string {
  if (!rest.startsWith(URL_SOURCE_PREFIX)) return rest;
  try {
    const parsed = parseSource(rest, "");
    if (parsed.kind !== "url") return REDACTED;
    const { origin, pathname } = new URL(parsed.url);
    return `${URL_SOURCE_PREFIX}${origin}${pathname}`;
  } catch {
    return URL_SOURCE_PREFIX + REDACTED;
  }
}
