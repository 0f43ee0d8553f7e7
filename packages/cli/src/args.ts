import { parseArgs } from "node:util";
import { AUTO_CLEANUP, MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES, isOutputFormat, isScale } from "../../contract/src/vocabulary.js";
import type { OutputFormat, Scale, UpscaleStatus } from "../../client/src/index.js";

/** What the command line asks for, checked: the one place argv is read. */
export type Command =
  | { name: "help"; topic?: string }
  | { name: "version" }
  | ({ name: "upscale" } & UpscaleArgs)
  | { name: "get"; id: string }
  | { name: "list"; status?: UpscaleStatus; limit?: number; cursor?: string }
  | { name: "cancel"; id: string }
  | { name: "delete"; id: string }
  | { name: "usage"; granularity?: "day" | "month"; from?: string; to?: string }
  | { name: "model" };

export interface UpscaleArgs {
  /** Files, or https URLs the worker fetches itself. */
  inputs: string[];
  out: string;
  scales?: Scale[];
  format?: OutputFormat | "auto";
  quality?: number;
  temperature?: number;
  cleanup?: number | typeof AUTO_CLEANUP;
  timeoutS: number;
}

/** Options every command takes. */
export interface Globals {
  url?: string;
  json: boolean;
}

export type Parsed = Command & { globals: Globals };

/** A command line that cannot be run as given: exit code 2, with the usage. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const COMMANDS = ["upscale", "get", "list", "cancel", "delete", "usage", "model"] as const;
export const STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const satisfies readonly UpscaleStatus[];
const DEFAULT_TIMEOUT_S = 600;

const text = { type: "string" } as const;
const flag = { type: "boolean" } as const;
const GLOBAL_OPTIONS = { url: text, json: flag, help: { type: "boolean", short: "h" } } as const;
const COMMAND_OPTIONS = {
  upscale: { out: { type: "string", short: "o" }, scales: text, format: text, quality: text, temperature: text, cleanup: text, timeout: text },
  get: {},
  list: { status: text, limit: text, cursor: text },
  cancel: {},
  delete: {},
  usage: { granularity: text, from: text, to: text },
  model: {},
} as const;

const isCommand = (name: string): name is (typeof COMMANDS)[number] => (COMMANDS as readonly string[]).includes(name);

/** Reads argv (without node and the script) into a command; throws UsageError for anything else. */
export function parseCommand(argv: readonly string[]): Parsed {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") return { name: "help", ...(rest[0] ? { topic: rest[0] } : {}), globals: { json: false } };
  if (first === "-v" || first === "--version" || first === "version") return { name: "version", globals: { json: false } };
  if (!isCommand(first)) throw new UsageError(`unknown command '${first}'`);

  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], allowPositionals: true, strict: true, options: { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[first] } });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const globals: Globals = { json: values.json ?? false, ...(values.url === undefined ? {} : { url: values.url }) };
  if (values.help) return { name: "help", topic: first, globals };
  const option = (name: string): string | undefined => {
    const value = (values as Record<string, unknown>)[name];
    return typeof value === "string" ? value : undefined;
  };

  switch (first) {
    case "upscale": {
      if (positionals.length === 0) throw new UsageError("no image given: a file or an https URL");
      const scales = option("scales");
      const format = option("format");
      const quality = option("quality");
      const temperature = option("temperature");
      const cleanup = option("cleanup");
      return {
        name: "upscale",
        inputs: positionals,
        out: option("out") ?? ".",
        ...(scales === undefined ? {} : { scales: parseScales(scales) }),
        ...(format === undefined ? {} : { format: parseFormat(format) }),
        ...(quality === undefined ? {} : { quality: parseInteger("--quality", quality, MIN_QUALITY, MAX_QUALITY) }),
        ...(temperature === undefined ? {} : { temperature: parseNumber("--temperature", temperature, 0, 2) }),
        ...(cleanup === undefined ? {} : { cleanup: parseCleanup(cleanup) }),
        timeoutS: parseNumber("--timeout", option("timeout") ?? String(DEFAULT_TIMEOUT_S), 1, Number.MAX_SAFE_INTEGER),
        globals,
      };
    }
    case "get":
    case "cancel":
    case "delete":
      return { name: first, id: onlyId(first, positionals), globals };
    case "list": {
      noPositionals(first, positionals);
      const status = option("status");
      const limit = option("limit");
      const cursor = option("cursor");
      if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status is one of ${STATUSES.join(", ")}, not '${status}'`);
      return {
        name: "list",
        ...(status === undefined ? {} : { status: status as UpscaleStatus }),
        ...(limit === undefined ? {} : { limit: parseInteger("--limit", limit, 1, 100) }),
        ...(cursor === undefined ? {} : { cursor }),
        globals,
      };
    }
    case "usage": {
      noPositionals(first, positionals);
      const granularity = option("granularity");
      const from = option("from");
      const to = option("to");
      if (granularity !== undefined && granularity !== "day" && granularity !== "month") throw new UsageError(`--granularity is day or month, not '${granularity}'`);
      for (const [name, value] of [["--from", from], ["--to", to]] as const) {
        if (value !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new UsageError(`${name} is a date, YYYY-MM-DD, not '${value}'`);
      }
      return { name: "usage", ...(granularity === undefined ? {} : { granularity }), ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }), globals };
    }
    case "model":
      noPositionals(first, positionals);
      return { name: "model", globals };
  }
}

/** "2,4" -> [2, 4]: a comma-separated subset of the scales, without repeats. */
export function parseScales(value: string): Scale[] {
  const parts = value.split(",").map((part) => part.trim());
  const scales = parts.map(Number);
  if (parts.some((part) => part === "") || !scales.every(isScale) || new Set(scales).size !== scales.length) {
    throw new UsageError(`--scales is a comma-separated subset of ${SCALES.join(",")}, not '${value}'`);
  }
  return scales;
}

function parseFormat(value: string): OutputFormat | "auto" {
  if (value === "auto" || isOutputFormat(value)) return value;
  throw new UsageError(`--format is one of ${[...OUTPUT_FORMATS, "auto"].join(", ")}, not '${value}'`);
}

function parseNumber(name: string, value: string, min: number, max: number): number {
  const number = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(number) || number < min || number > max) throw new UsageError(`${name} is a number from ${min}${max === Number.MAX_SAFE_INTEGER ? " up" : ` to ${max}`}, not '${value}'`);
  return number;
}

function parseCleanup(value: string): number | typeof AUTO_CLEANUP {
  if (value === AUTO_CLEANUP) return AUTO_CLEANUP;
  const number = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1) throw new UsageError(`--cleanup is ${AUTO_CLEANUP} or a number from 0 to 1, not '${value}'`);
  return number;
}

function parseInteger(name: string, value: string, min: number, max: number): number {
  const number = parseNumber(name, value, min, max);
  if (!Number.isInteger(number)) throw new UsageError(`${name} is a whole number from ${min} to ${max}, not '${value}'`);
  return number;
}

function onlyId(command: string, positionals: string[]): string {
  const [id, ...extra] = positionals;
  if (id === undefined) throw new UsageError(`${command} needs the upscale's id (j_...)`);
  if (extra.length > 0) throw new UsageError(`${command} takes one id, not ${positionals.length}`);
  return id;
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no arguments, only options (got '${positionals[0]}')`);
}

/** Where the API is and the key to call it with: --url or HVAR_URL, and HVAR_API_KEY (never a flag: flags show in `ps` and shell history). */
export function connectionOf(globals: Globals, env: Readonly<Record<string, string | undefined>>): { baseUrl: string; apiKey: string } {
  const baseUrl = globals.url ?? env.HVAR_URL;
  if (!baseUrl) throw new UsageError("no deployment: pass --url <https://...> or set HVAR_URL");
  if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) throw new UsageError(`--url/HVAR_URL is an http(s) URL, not '${baseUrl}'`);
  const apiKey = env.HVAR_API_KEY;
  if (!apiKey) throw new UsageError("no API key: set HVAR_API_KEY (hvar_sk_...)");
  return { baseUrl, apiKey };
}
