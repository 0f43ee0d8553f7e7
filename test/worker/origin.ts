/**
 * Image origins for the CDN tests, served by the fake internet (setup/fake-internet.ts): each test
 * puts real image bytes (or redirects, errors, slow answers) at URLs of its own, and reads back
 * which URLs the worker fetched.
 */
import { uniqueName } from "./unique";

const CONTROL = "https://fake-internet.invalid";

export interface RouteOptions {
  status?: number;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Send the body without Content-Length. */
  chunked?: boolean;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Serves `body` at exactly `url` (GET), with status 200 unless told otherwise. */
export async function serve(url: string, body: Uint8Array | string | null, options: RouteOptions = {}): Promise<void> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const response = await fetch(`${CONTROL}/routes`, {
    method: "POST",
    body: JSON.stringify({ url, ...options, ...(bytes === null ? {} : { bodyBase64: base64(bytes) }) }),
  });
  if (response.status !== 204) throw new Error(`fake internet: ${response.status} ${await response.text()}`);
}

export function redirect(from: string, to: string, status = 302): Promise<void> {
  return serve(from, null, { status, headers: { location: to } });
}

/** The URLs the worker fetched that start with `prefix`, in order. */
export async function fetched(prefix: string): Promise<string[]> {
  return (await requests(prefix)).map((r) => r.url);
}

/** The requests the worker made to URLs that start with `prefix`, in order, with headers and body. */
export async function requests(prefix: string): Promise<{ method: string; url: string; headers: Record<string, string>; body: string }[]> {
  const response = await fetch(`${CONTROL}/requests?prefix=${encodeURIComponent(prefix)}`);
  return response.json();
}

/** A fresh path prefix per test, so tests never see each other's routes or requests. */
export function uniquePath(): string {
  return `/t/${uniqueName()}`;
}
