/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

/**
 * The worker's import graph (docs/design/ARCHITECTURE.md, "Worker layout"): read from the sources
 * themselves, type-only imports included, so that a cycle or an import against the flow fails here
 * rather than in review.
 */
const SOURCES = import.meta.glob<string>("../../worker/src/**/*.ts", { query: "?raw", import: "default", eager: true });
const ROOT = "../../worker/src/";

/** Static imports and re-exports (`import x from`, `import type {…} from`, `export * from`, `import "…"`) at the start of a line. */
const IMPORT = /^(?:import|export)(?:[\s\w*{},$]*?\sfrom)?\s*"([^"]+)"/gm;

/** worker/src-relative path ("jobs/start.ts") of a relative specifier, or null when it leaves worker/src. */
function resolve(from: string, specifier: string): string | null {
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.replace(/\.js$/, "").split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  const path = parts.join("/");
  return [`${path}.ts`, `${path}/index.ts`].find((candidate) => candidate in graph) ?? null;
}

const graph: Record<string, string[]> = Object.fromEntries(Object.keys(SOURCES).map((key) => [key.slice(ROOT.length), []]));
for (const [key, text] of Object.entries(SOURCES)) {
  const file = key.slice(ROOT.length);
  for (const [, specifier = ""] of text.matchAll(IMPORT)) {
    const target = specifier.startsWith(".") ? resolve(file, specifier) : null;
    if (target) graph[file]?.push(target);
  }
}

/** Every cycle as a path that returns to its start (depth-first search, each file visited once). */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (file: string, path: string[]): void => {
    state.set(file, "open");
    for (const next of graph[file] ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), file, next]);
      else if (!state.has(next)) visit(next, [...path, file]);
    }
    state.set(file, "done");
  };
  for (const file of Object.keys(graph)) if (!state.has(file)) visit(file, []);
  return found;
}

const folderOf = (file: string) => (file.includes("/") ? (file.split("/")[0] ?? "") : "");
const importsBetween = (from: string, to: readonly string[]) =>
  Object.entries(graph).flatMap(([file, targets]) => (folderOf(file) === from ? targets.filter((t) => to.includes(folderOf(t))).map((t) => `${file} -> ${t}`) : []));

describe("the worker's import graph", () => {
  it("is read from the sources", () => {
    expect(graph["jobs/start.ts"]).toEqual(expect.arrayContaining(["jobs/lifecycle.ts", "storage/jobs.ts", "dispatch/types.ts"]));
  });

  it("has no cycle, type-only imports included", () => {
    expect(cycles().map((cycle) => cycle.join(" -> "))).toEqual([]);
  });

  // Imports flow one way: routes -> cdn -> jobs -> dispatch -> storage; security is a leaf.
  it.each([
    ["storage", ["dispatch", "jobs", "cdn", "routes", "webhooks"]],
    ["dispatch", ["jobs", "cdn", "routes", "webhooks"]],
    ["jobs", ["cdn", "routes"]],
    ["cdn", ["routes"]],
    ["webhooks", ["dispatch", "jobs", "cdn", "routes"]],
    ["security", ["storage", "dispatch", "jobs", "cdn", "routes", "webhooks", "meter", "auth"]],
  ] as const)("%s imports none of %j", (from, to) => {
    expect(importsBetween(from, to)).toEqual([]);
  });

  it("leaves the routes to index.ts alone", () => {
    const importers = Object.entries(graph).flatMap(([file, targets]) => (folderOf(file) !== "routes" && targets.some((t) => folderOf(t) === "routes") ? [file] : []));
    expect(importers).toEqual(["index.ts"]);
  });
});
