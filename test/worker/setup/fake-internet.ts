/**
 * The worker's outbound network in the tests (Miniflare's `outboundService`): every `fetch()` the
 * worker makes arrives here, in Node, instead of on the network. So the CDN's real source-fetching
 * code runs unchanged, and the tests see exactly which URLs it asked for.
 *
 * - Origins listed in `passThrough` (the runner stubs) are forwarded to the real loopback network.
 * - Every other request is logged, and answered from routes the tests set up, by exact URL;
 *   a URL without a route gets 404 (`x-fake-internet: no-route`). Nothing else is ever contacted,
 *   so a test about 10.0.0.1 cannot reach a real 10.0.0.1 even if the code under test is wrong.
 * - Tests talk to it at https://fake-internet.invalid (`.invalid` never resolves):
 *   POST /routes {url, status?, headers?, bodyBase64?, delayMs?, chunked?} and
 *   GET /requests?prefix=<url prefix> (method, URL, headers and body of each). See
 *   test/worker/origin.ts for the helpers.
 */
export const FAKE_INTERNET = "https://fake-internet.invalid";

interface Route {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | null;
  delayMs: number;
  chunked: boolean;
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body as text ("" for GET and HEAD): what a webhook receiver would read. */
  body: string;
}

const json = (value: unknown, status = 200) => new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

async function forward(request: Request): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete("host");
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
  let response: Response;
  try {
    response = await fetch(request.url, { method: request.method, headers, body, redirect: "manual" });
  } catch {
    // Nothing listens (the dead runner): what a gateway would answer.
    return new Response("fake internet: connection refused", { status: 502, headers: { "x-fake-internet": "unreachable" } });
  }
  // Node's fetch has already decoded the body; do not let workerd decode it again.
  const out = new Headers(response.headers);
  if (out.has("content-encoding")) {
    out.delete("content-encoding");
    out.delete("content-length");
  }
  return new Response(response.body, { status: response.status, headers: out });
}

export function fakeInternet(options: { passThrough: string[] }): (request: Request) => Promise<Response> {
  const passThrough = new Set(options.passThrough.map((url) => new URL(url).origin));
  const routes = new Map<string, Route>();
  const log: LoggedRequest[] = [];

  async function control(request: Request, url: URL): Promise<Response> {
    if (request.method === "POST" && url.pathname === "/routes") {
      const spec = (await request.json()) as { url: string; status?: number; headers?: Record<string, string>; bodyBase64?: string; delayMs?: number; chunked?: boolean };
      routes.set(new URL(spec.url).href, {
        status: spec.status ?? 200,
        headers: spec.headers ?? {},
        body: spec.bodyBase64 === undefined ? null : Uint8Array.from(Buffer.from(spec.bodyBase64, "base64")),
        delayMs: spec.delayMs ?? 0,
        chunked: spec.chunked ?? false,
      });
      return new Response(null, { status: 204 });
    }
    if (request.method === "GET" && url.pathname === "/requests") {
      const prefix = url.searchParams.get("prefix") ?? "";
      return json(log.filter((entry) => entry.url.startsWith(prefix)));
    }
    return json({ error: "unknown control request" }, 400);
  }

  return async function outbound(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.origin === FAKE_INTERNET) return control(request, url);
    if (passThrough.has(url.origin)) return forward(request);
    const body = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
    log.push({ method: request.method, url: url.href, headers: Object.fromEntries(request.headers), body });
    url.hash = "";
    const route = routes.get(url.href);
    if (!route) return new Response("fake internet: no route", { status: 404, headers: { "x-fake-internet": "no-route" } });
    if (route.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, route.delayMs));
    const bytes = route.body;
    if (bytes && route.chunked) {
      // A body without Content-Length, as a streaming origin sends it.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let offset = 0; offset < bytes.length; offset += 16 * 1024) controller.enqueue(bytes.slice(offset, offset + 16 * 1024));
          controller.close();
        },
      });
      return new Response(stream, { status: route.status, headers: route.headers });
    }
    return new Response(bytes, { status: route.status, headers: route.headers });
  };
}
