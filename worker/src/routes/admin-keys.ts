import { DomainError } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { adminAuth } from "../auth/middleware";
import { apiKeySchema, createKey, getKey, keySettingsSchema, listKeys, revokeKey, rotateKey } from "../auth/keys";
import { openApiRouter, problemResponses } from "../http/openapi";

/** Key management, for operators only (ADMIN_SECRET). Secrets appear in responses exactly once. */
const keyWithSecretSchema = z
  .object({
    key: apiKeySchema,
    secret: z.string().openapi({ description: "The API key; shown once, store it now" }),
    webhookSecret: z.string().openapi({ description: "Verifies this key's webhooks (Standard Webhooks); shown once" }),
    cdnSecret: z.string().openapi({ description: "Signs this key's CDN URLs (see `buildCdnUrl`); shown once" }),
  })
  .openapi("ApiKeyWithSecret");

const idParams = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });
const security = [{ adminBearer: [] }];
const tags = ["admin"];

const notFound = (id: string) =>
  new DomainError({ kind: "not_found", code: "key_not_found", title: "No such API key", detail: `No key ${id}.` });

const create = createRoute({
  method: "post",
  path: "/admin/keys",
  operationId: "createKey",
  summary: "Create an API key; its secrets are shown once",
  tags,
  security,
  request: { body: { required: true, content: { "application/json": { schema: keySettingsSchema } } } },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: keyWithSecretSchema } } },
    ...problemResponses(400, 401),
  },
});

const list = createRoute({
  method: "get",
  path: "/admin/keys",
  operationId: "listKeys",
  summary: "List API keys, optionally of one owner",
  tags,
  security,
  request: { query: z.object({ owner: z.string().optional() }) },
  responses: {
    200: { description: "Keys", content: { "application/json": { schema: z.object({ keys: z.array(apiKeySchema) }) } } },
    ...problemResponses(401),
  },
});

const read = createRoute({
  method: "get",
  path: "/admin/keys/{id}",
  operationId: "getKey",
  summary: "Read an API key's settings",
  tags,
  security,
  request: { params: idParams },
  responses: {
    200: { description: "The key", content: { "application/json": { schema: apiKeySchema } } },
    ...problemResponses(401, 404),
  },
});

const rotate = createRoute({
  method: "post",
  path: "/admin/keys/{id}/rotate",
  operationId: "rotateKey",
  summary: "Rotate an API key: new secrets, the old ones stop working",
  tags,
  security,
  request: { params: idParams },
  responses: {
    200: { description: "New secret; the old one no longer works", content: { "application/json": { schema: keyWithSecretSchema } } },
    ...problemResponses(401, 404, 409),
  },
});

const revoke = createRoute({
  method: "post",
  path: "/admin/keys/{id}/revoke",
  operationId: "revokeKey",
  summary: "Revoke an API key at once",
  tags,
  security,
  request: { params: idParams },
  responses: {
    200: { description: "Revoked (at once)", content: { "application/json": { schema: apiKeySchema } } },
    ...problemResponses(401, 404),
  },
});

export const adminKeys = openApiRouter();
adminKeys.use("/admin/*", adminAuth());
adminKeys
  .openapi(create, async (c) => c.json(await createKey(c.env.DB, c.req.valid("json")), 201))
  .openapi(list, async (c) => c.json({ keys: await listKeys(c.env.DB, c.req.valid("query").owner) }, 200))
  .openapi(read, async (c) => {
    const { id } = c.req.valid("param");
    const key = await getKey(c.env.DB, id);
    if (!key) throw notFound(id);
    return c.json(key, 200);
  })
  .openapi(rotate, async (c) => {
    const { id } = c.req.valid("param");
    const rotated = await rotateKey(c.env.DB, id);
    if (!rotated) {
      if (await getKey(c.env.DB, id)) {
        throw new DomainError({ kind: "conflict", code: "key_revoked", title: "A revoked key cannot be rotated" });
      }
      throw notFound(id);
    }
    return c.json(rotated, 200);
  })
  .openapi(revoke, async (c) => {
    const { id } = c.req.valid("param");
    const key = await revokeKey(c.env.DB, id);
    if (!key) throw notFound(id);
    return c.json(key, 200);
  });
