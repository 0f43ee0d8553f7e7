import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../worker/src/security/crypto";
import { signRunnerRequest } from "../../worker/src/security/runner-signature";

describe("signing a request to a runner", () => {
  it("signs a body by its stored sha256 exactly as by its bytes", async () => {
    const body = new TextEncoder().encode("image bytes");
    const now = 1_700_000_000_000;
    const byBytes = await signRunnerRequest("secret", "POST", "/v1/jobs?id=j_1", body, now);
    const byHash = await signRunnerRequest("secret", "POST", "/v1/jobs?id=j_1", { sha256: await sha256Hex(body) }, now);
    expect(byHash).toEqual(byBytes);
  });
});
