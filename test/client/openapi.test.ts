import { describe, expect, it } from "vitest";
import { committedTypes, generateTypes, servedDocument, writeTypes } from "./openapi";

describe("the client's types", () => {
  it("are what openapi-typescript makes of the worker's OpenAPI document, so they cannot drift", async () => {
    const generated = await generateTypes(await servedDocument());
    if (process.env.HVAR_UPDATE_TYPES) await writeTypes(generated);
    expect(await committedTypes(), "packages/client/src/openapi.ts is stale: HVAR_UPDATE_TYPES=1 npx vitest run --project client openapi").toBe(generated);
  });
});
