/**
 * The CDN URL grammar, signature and builder are shared with customers, so they live in the client
 * package (packages/client/src/cdn/signature.ts); the worker uses that very code, so both sides parse,
 * normalize and sign the same text.
 */
export * from "../../../packages/client/src/cdn/signature.js";
