import { describe, expect, it } from "vitest";
import { HvarError, errorFrom, problemOf, retryAfterOf } from "../../packages/client/src/index";

const problemResponse = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/problem+json", ...headers } });

describe("errors from the API", () => {
  it("carry the problem+json: type, status, code, title, detail and its extensions", async () => {
    const error = await errorFrom(
      problemResponse(
        409,
        { type: "https://hvar.dev/problems/idempotency_key_reused", status: 409, code: "idempotency_key_reused", title: "This Idempotency-Key was used with a different request", jobId: "j_abc" },
        { "x-request-id": "req_123" },
      ),
    );
    expect(error).toBeInstanceOf(HvarError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: "HvarError", status: 409, code: "idempotency_key_reused", type: "https://hvar.dev/problems/idempotency_key_reused", detail: undefined, requestId: "req_123", retryAfterS: null });
    expect(error.problem.jobId).toBe("j_abc");
    expect(error.message).toBe("This Idempotency-Key was used with a different request");
  });

  it("say title and detail in the message, and keep Retry-After in seconds", async () => {
    const error = await errorFrom(
      problemResponse(429, { type: "https://hvar.dev/problems/rate_limited", status: 429, code: "rate_limited", title: "Too many requests", detail: "60 per minute" }, { "retry-after": "7" }),
    );
    expect(error.message).toBe("Too many requests: 60 per minute");
    expect(error.retryAfterS).toBe(7);
  });

  it("turn an answer that is not problem+json (a proxy's HTML page) into code http_error with the status", () => {
    expect(problemOf(502, "Bad Gateway", "<html>upstream down</html>")).toEqual({
      type: "https://hvar.dev/problems/http_error",
      status: 502,
      code: "http_error",
      title: "Bad Gateway",
      detail: "<html>upstream down</html>",
    });
    expect(problemOf(500, "", "")).toEqual({ type: "https://hvar.dev/problems/http_error", status: 500, code: "http_error", title: "HTTP 500" });
  });

  it("fill in type and status when a problem lacks them, from its code and the answer", () => {
    expect(problemOf(404, "Not Found", JSON.stringify({ code: "job_not_found", title: "No such upscale" }))).toEqual({
      type: "https://hvar.dev/problems/job_not_found",
      status: 404,
      code: "job_not_found",
      title: "No such upscale",
    });
  });

  it("read Retry-After as seconds or as an HTTP date", () => {
    expect(retryAfterOf(new Headers({ "retry-after": "5" }))).toBe(5);
    expect(retryAfterOf(new Headers({ "retry-after": "Thu, 15 Jan 2027 08:00:30 GMT" }), Date.parse("2027-01-15T08:00:00Z"))).toBe(30);
    expect(retryAfterOf(new Headers())).toBeNull();
  });
});
