import { DomainError } from "@hvar/contract";
import { type SourcePolicy, checkHop } from "../security/source-policy";
import type { ReceivedInput } from "../storage/uploads";
import { type UploadTarget, storeImage } from "../validate/body";
import type { ImageInfo } from "../validate/sniff";

/**
 * Fetches a CDN source without trusting it: redirects are followed by hand so that every hop passes
 * the source policy again (a public origin must not bounce the worker to 169.254.169.254), at most
 * a few of them; one deadline covers all hops and the body; the body streams into R2 (the
 * target's inputs/<job id>) with a byte cap, as an upload does, refused on its first bytes when they
 * show it too large; and the type is read from the magic bytes, whatever Content-Type the origin claims.
 */
export interface SourceLimits {
  timeoutMs: number;
  maxRedirects: number;
}

export interface FetchedSource {
  image: ImageInfo;
  input: ReceivedInput;
}

export const MAX_SOURCE_REDIRECTS = 3;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8";
const USER_AGENT = "hvar-cdn/1 (+https://hvar.dev/docs)";

const sourceProblem = (kind: "not_found" | "too_large" | "upstream" | "timeout", code: string, title: string, detail?: string) =>
  new DomainError({ kind, code, title, ...(detail === undefined ? {} : { detail }) });

async function fetchHops(start: URL, policy: SourcePolicy, limits: SourceLimits, target: UploadTarget, scales: readonly number[], signal: AbortSignal): Promise<FetchedSource> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    checkHop(url, policy);
    const response = await fetch(url.href, { redirect: "manual", signal, headers: { accept: ACCEPT, "user-agent": USER_AGENT } });
    if (REDIRECT_STATUSES.has(response.status)) {
      await response.body?.cancel();
      const location = response.headers.get("location");
      if (!location || !URL.canParse(location, url)) throw sourceProblem("upstream", "source_error", "The source redirected nowhere");
      if (redirects >= limits.maxRedirects) {
        throw sourceProblem("upstream", "source_too_many_redirects", "The source redirected too often", `More than ${limits.maxRedirects} redirects.`);
      }
      url = new URL(location, url);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      if (response.status === 404 || response.status === 410) throw sourceProblem("not_found", "source_not_found", "The source image does not exist");
      throw sourceProblem("upstream", "source_error", "The source could not be fetched", `The origin answered ${response.status}.`);
    }
    const maxBytes = target.limits.maxBytes;
    const tooLarge = () => sourceProblem("too_large", "source_too_large", "The source image is too large", `The limit is ${maxBytes} bytes.`);
    const empty = () => sourceProblem("upstream", "source_error", "The source is empty");
    if (Number(response.headers.get("content-length") ?? 0) > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) throw empty();
    // Of unknown length: a Content-Length may count the encoded body, not what fetch decodes.
    return storeImage(target, response.body, null, scales, { tooLarge, empty });
  }
}

/** Fetches the source into `target` (its image checked against `scales` on its first bytes); the caller checks the limits on the exact size. */
export async function fetchSource(source: URL, policy: SourcePolicy, limits: SourceLimits, target: UploadTarget, scales: readonly number[]): Promise<FetchedSource> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  try {
    return await fetchHops(source, policy, limits, target, scales, signal);
  } catch (error) {
    if (error instanceof DomainError) throw error;
    if (signal.aborted) throw sourceProblem("timeout", "source_timeout", "The source took too long", `The limit is ${limits.timeoutMs} ms.`);
    throw sourceProblem("upstream", "source_unreachable", "The source could not be reached");
  }
}
