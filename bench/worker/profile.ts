/**
 * A CPU profile of the worker's isolate under `wrangler dev`, through wrangler's inspector (the
 * DevTools protocol's Profiler domain), and the functions that spent it: where a request's time goes
 * that a bare route does not spend. The profile is saved as a `.cpuprofile` (Chrome DevTools and
 * speedscope open it).
 */
import { writeFileSync } from "node:fs";
import { z } from "zod";

const targetsSchema = z.array(z.object({ webSocketDebuggerUrl: z.string() })).min(1);

const nodeSchema = z.object({
  id: z.number(),
  callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
  children: z.array(z.number()).optional(),
});
const profileSchema = z.object({
  nodes: z.array(nodeSchema),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
  startTime: z.number(),
  endTime: z.number(),
});
type Profile = z.infer<typeof profileSchema>;

/** One DevTools session: `send` answers with the command's result. */
async function connect(inspectorPort: number): Promise<{ send(method: string, params?: object): Promise<unknown>; close(): void }> {
  const targets = targetsSchema.parse(await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json());
  // wrangler's inspector takes only DevTools' origins and the local machine's.
  const socket = new WebSocket((targets[0] as { webSocketDebuggerUrl: string }).webSocketDebuggerUrl, { headers: { origin: "http://127.0.0.1" } });
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error("the worker's inspector refused the connection")), { once: true });
  });
  const pending = new Map<number, (result: unknown) => void>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  let next = 0;
  return {
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/** Profiles the worker while `work` runs; the profile is written to `file`. */
export async function profileWhile(inspectorPort: number, file: string, work: () => Promise<void>): Promise<Profile> {
  const session = await connect(inspectorPort);
  try {
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: 100 }); // µs
    await session.send("Profiler.start");
    await work();
    const { profile } = z.object({ profile: profileSchema }).parse(await session.send("Profiler.stop"));
    writeFileSync(file, JSON.stringify(profile));
    return profile;
  } finally {
    session.close();
  }
}

export interface Hotspot {
  name: string;
  /** Share of the busy samples (idle left out) spent in the function itself. */
  self: number;
  /** Share spent in the function and what it called. */
  total: number;
}

export interface Summary {
  /** Milliseconds the isolate was busy (not idle) while the profile ran. */
  busyMs: number;
  hotspots: Hotspot[];
}

/** The busy time, and the functions with the most self time with their total time, as shares of it. */
export function summarize(profile: Profile, count = 15): Summary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (id: number) => {
    const { functionName, url, lineNumber } = (byId.get(id) as z.infer<typeof nodeSchema>).callFrame;
    const file = url.split("/").pop() ?? "";
    return file ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0; // a sample lasts until the next one
    if (label(id) === "(idle)") return;
    busy += dt;
    self.set(label(id), (self.get(label(id)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(at);
      if (seen.has(name)) continue; // a recursive function counts once per sample
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + dt);
    }
  });
  const hotspots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, time]) => ({ name, self: time / busy, total: (total.get(name) ?? 0) / busy }));
  return { busyMs: busy / 1000, hotspots };
}
