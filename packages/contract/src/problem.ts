import { z } from "zod";
import { problemType } from "./vocabulary.ts";

/**
 * Errors, from the worker and from the runner alike: RFC 9457 problem+json (PROBLEM_CONTENT_TYPE)
 * with a stable machine-readable `code` that clients branch on, and a `type` URL named after it;
 * people read the title and the detail. Extensions (e.g. `jobId`) ride along.
 */
export const problemSchema = z.object({
  type: z.string(),
  status: z.number().int(),
  code: z.string().describe("Stable machine-readable error code"),
  title: z.string(),
  detail: z.string().optional(),
});

export interface Problem<Status extends number = number> {
  status: Status;
  code: string;
  title: string;
  detail?: string;
  [extension: string]: unknown;
}

/** The body of a problem answer: its `type` first, as RFC 9457 shows it. */
export function problemBody<Status extends number>({ status, code, title, ...rest }: Problem<Status>) {
  return { type: problemType(code), status, code, title, ...rest };
}
