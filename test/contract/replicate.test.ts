import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { SCALES, replicateInputSchema, replicateOutputSchema } from "@hvar/contract";

/**
 * infra/replicate/schema.json: the Replicate contract of packages/contract/src/replicate.ts in the shape
 * Cog gives a predictor's OpenAPI components (`Input`, `Output`, and one enum schema per input with
 * choices; Cog's python/cog/_schemas.py). infra/replicate/test_predict.py reads predict.py's schema,
 * by the same rules, against this file.
 */
const SCHEMA_FILE = fileURLToPath(new URL("../../infra/replicate/schema.json", import.meta.url));
const STALE = "infra/replicate/schema.json is stale: HVAR_UPDATE_TYPES=1 npx vitest run --project contract replicate";

interface JsonSchema {
  type?: string;
  format?: string;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

/** Python's str.title() of an input's name, as Cog titles it ("x1" → "X1"). */
const titleOf = (name: string) => name.replace(/_/g, " ").replace(/\b\w/g, (c) => c.toUpperCase());

/** Cog's components for a predictor whose inputs and Output object are these JSON schemas. */
function cogComponents(input: JsonSchema, output: JsonSchema) {
  const components: Record<string, unknown> = {};
  const properties: Record<string, unknown> = {};
  Object.entries(input.properties ?? {}).forEach(([name, { type, format, enum: choices, default: fallback, description, minimum, maximum, pattern }], order) => {
    if (choices) components[name] = { title: name, description: "An enumeration.", enum: choices, type };
    properties[name] = Object.fromEntries(
      Object.entries({
        "x-order": order,
        ...(choices ? { allOf: [{ $ref: `#/components/schemas/${name}` }] } : { title: titleOf(name), type, format }),
        default: fallback,
        description,
        minimum,
        maximum,
        pattern,
      }).filter(([, value]) => value !== undefined),
    );
  });
  const fields = Object.entries(output.properties ?? {}).map(([name, field]) => {
    const file = field.anyOf?.find((member) => member.type !== "null") ?? field;
    return [name, { type: file.type, format: file.format, title: titleOf(name) }] as const;
  });
  return {
    Input: { title: "Input", type: "object", properties, required: input.required },
    Output: { title: "Output", type: "object", properties: Object.fromEntries(fields), required: fields.map(([name]) => name) },
    ...components,
  };
}

const generated = cogComponents(z.toJSONSchema(replicateInputSchema, { io: "input" }) as JsonSchema, z.toJSONSchema(replicateOutputSchema) as JsonSchema);

describe("the Replicate contract", () => {
  it("is committed as infra/replicate/schema.json, in the shape of the Cog predictor's OpenAPI components", async () => {
    const text = `${JSON.stringify(generated, null, 2)}\n`;
    if (process.env.HVAR_UPDATE_TYPES) await writeFile(SCHEMA_FILE, text);
    expect(JSON.parse(await readFile(SCHEMA_FILE, "utf8")), STALE).toEqual(generated);
  });

  it("takes the image and nothing else without a default", () => {
    expect(generated.Input.required).toEqual(["image"]);
    expect(replicateInputSchema.parse({ image: "https://example.com/a.png" })).toEqual({ image: "https://example.com/a.png", scales: "1,2,4", format: "png", quality: 85, temperature: 0, cleanup: "auto", size: "" });
  });

  it.each(["auto", "0", "0.5", "0.75", "1", "1.0"])("takes the clean-up %j", (cleanup) => {
    expect(replicateInputSchema.safeParse({ image: "data:image/png;base64,AA==", cleanup }).success).toBe(true);
  });

  it.each(["", "1.5", "2", "-1", "Auto", ".5"])("refuses the clean-up %j", (cleanup) => {
    expect(replicateInputSchema.safeParse({ image: "data:image/png;base64,AA==", cleanup }).success).toBe(false);
  });

  it.each(["", "3", "1,,2", "1,2,", "x2", "1 ,2"])("refuses the scales %j", (scales) => {
    expect(replicateInputSchema.safeParse({ image: "data:image/png;base64,AA==", scales }).success).toBe(false);
  });

  it.each(["640", "0x480", "640x", "640x480x2", " 640x480"])("refuses the size %j", (size) => {
    expect(replicateInputSchema.safeParse({ image: "data:image/png;base64,AA==", size }).success).toBe(false);
  });

  it("gives one output per scale, a URL or null for a scale not asked for", () => {
    expect(Object.keys(generated.Output.properties)).toEqual(SCALES.map((scale) => `x${scale}`));
    expect(replicateOutputSchema.safeParse({ x1: null, x2: "https://replicate.delivery/a/x2.png", x4: null }).success).toBe(true);
    expect(replicateOutputSchema.safeParse({ x2: "https://replicate.delivery/a/x2.png" }).success).toBe(false);
    expect(replicateOutputSchema.safeParse({ x1: null, x2: "not a url", x4: null }).success).toBe(false);
  });
});
