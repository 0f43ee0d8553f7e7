import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FILES_HELD, UNFINISHED } from "../../worker/src/storage/jobs";

/**
 * The queries that run for every cache hit, every deletion and every cron tick read only the rows
 * they want, through an index: their cost must not grow with the number of jobs ever made. SQLite's
 * own plan says so (D1 is SQLite): "SEARCH" reads one range of an index, "SCAN" reads all of a table
 * or of an index, which is right only for an index that holds nothing but the rows wanted.
 */
async function planOf(sql: string, ...binds: unknown[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...binds)
    .all<{ detail: string }>();
  return results.map((step) => step.detail);
}

describe("query plans", () => {
  it("checks whether a job's result files are held with two index lookups (a hit's insert, a deletion)", async () => {
    const plan = await planOf(`SELECT ${FILES_HELD} AS held`, "j_owner", "j_owner");
    expect(plan.filter((step) => step.startsWith("SCAN jobs"))).toEqual([]);
    expect(plan.filter((step) => step.startsWith("SEARCH jobs"))).toEqual([
      expect.stringContaining("(id=?)"),
      expect.stringContaining("jobs_results_of (results_of=?)"),
    ]);
  });

  it("reads the cron's unfinished jobs from an index of unfinished jobs alone, in deadline order", async () => {
    expect(await planOf(UNFINISHED, 100)).toEqual(["SCAN jobs USING INDEX jobs_unfinished"]);
  });
});
