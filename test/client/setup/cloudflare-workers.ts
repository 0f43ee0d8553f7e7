/** Stands in for `cloudflare:workers` when the worker is loaded on Node for its OpenAPI document. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- only a base class to extend; nothing runs it
export class DurableObject {}
