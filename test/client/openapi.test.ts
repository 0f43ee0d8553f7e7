import { describe, expect, it } from "vitest";
import { committedDocument, committedTypes, documentText, generateTypes, servedDocument, writeDocument, writeTypes } from "./openapi";

const STALE = "is stale: HVAR_UPDATE_TYPES=1 npx vitest run --project client openapi";

describe("the worker's OpenAPI document", () => {
  it("is committed as docs/openapi.json exactly as the worker serves it, for the linter and for readers", async () => {
    const served = documentText(await servedDocument());
    if (process.env.HVAR_UPDATE_TYPES) await writeDocument(served);
    expect(await committedDocument(), `docs/openapi.json ${STALE}`).toBe(served);
  });
});

describe("the client's types", () => {
  it("are what openapi-typescript makes of the worker's OpenAPI document, so they cannot drift", async () => {
    const generated = await generateTypes(await servedDocument());
    if (process.env.HVAR_UPDATE_TYPES) await writeTypes(generated);
    expect(await committedTypes(), `packages/client/src/openapi.ts ${STALE}`).toBe(generated);
  });
});
