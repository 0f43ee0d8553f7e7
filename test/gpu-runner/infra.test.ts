import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DockerfileParser, type JSONInstruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { cancelJobPath, createJobPath, inputKey, jobPath, jobRecordKey, outputPath, resultKey } from "@hvar/contract";
import { loadConfig, RunnerConfigSchema } from "../../gpu-runner/src/config";
import { RunnerMetrics } from "../../gpu-runner/src/server/metrics";
import { consumerCommands, jobQueueOf } from "../../infra/queue-consumer";
import { deploymentOf, lifecycleRules } from "../../infra/r2-lifecycle";

// No Docker engine or cluster runs here. The image and the manifests are parsed (dockerfile-ast,
// yaml; the kustomization as kustomize reads it, and checked against `kubectl kustomize` where
// kubectl is installed) and read for what they mean: that the runner they configure starts with
// those settings, listens where its probes, Service, scrapes and edge (Ingress or Cloudflare
// Tunnel) look, publishes only its signed routes, and exports the metric the autoscaler reads.
// The build checks its own facts (the CUDA provider files: the `test -f` in the Dockerfile).

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, "utf8");

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function yamlDocuments<T>(path: string): T[] {
  return parseAllDocuments(read(path)).map((doc) => {
    expect(doc.errors, `${path}: ${doc.errors.join("; ")}`).toEqual([]);
    return doc.toJS() as T;
  });
}

interface Kustomization {
  apiVersion: string;
  kind: "Kustomization" | "Component";
  labels?: unknown;
  resources?: string[];
  components?: string[];
}

/**
 * The objects `kubectl kustomize <dir>` renders, read as kustomize reads them: each resource (a
 * file, or a directory with its own kustomization), then each component's (or `components`'
 * instead). Only these fields are used in infra/k8s; a patch or a generator would need more than
 * this reader, so it fails on one.
 */
function kustomize(dir: string, components?: string[]): K8sObject[] {
  const [kustomization] = yamlDocuments<Kustomization>(`${dir}/kustomization.yaml`);
  if (!kustomization) throw new Error(`${dir}/kustomization.yaml is empty`);
  expect(Object.keys(kustomization).filter((key) => !["apiVersion", "kind", "labels", "resources", "components"].includes(key)), dir).toEqual([]);
  const load = (path: string) => (statSync(`${root}${path}`).isDirectory() ? kustomize(path) : yamlDocuments<K8sObject>(path));
  return [...(kustomization.resources ?? []).flatMap((r) => load(`${dir}/${r}`)), ...(components ?? kustomization.components ?? []).flatMap((c) => kustomize(`${dir}/${c}`))];
}

const objects = kustomize("infra/k8s");
/** Where kubectl is installed (not in every CI image), kustomize itself checks the render too. */
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8", timeout: 30_000 }).status === 0;
const byKind = (kind: string) => objects.find((o) => o.kind === kind) as K8sObject;
// The Deployment's pod, typed loosely: only the fields these checks read.
const pod = (byKind("Deployment").spec as { template: { metadata: { annotations: Record<string, string> }; spec: unknown } }).template;
const podSpec = pod.spec as { securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number }; terminationGracePeriodSeconds: number };
const container = (pod.spec as { containers: unknown[] }).containers[0] as {
  ports: { name: string; containerPort: number }[];
  envFrom: { configMapRef?: { name: string } }[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string }; resourceFieldRef?: { resource: string; divisor?: string } } }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  startupProbe: { httpGet: { path: string; port: string } };
  resources: { requests: Record<string, unknown>; limits: Record<string, unknown> };
};
const configMap = byKind("ConfigMap").data ?? {};
const secrets = { RUNNER_HMAC_SECRET: "s".repeat(32), HVAR_S3_ACCESS_KEY_ID: "id", HVAR_S3_SECRET_ACCESS_KEY: "secret" };

/** The final stage of infra/runner.Dockerfile: the image that runs. */
function runtimeImage() {
  const dockerfile = DockerfileParser.parse(read("infra/runner.Dockerfile"));
  const from = dockerfile.getFROMs().at(-1);
  const stage = from && dockerfile.getContainingImage(from.getRange().start);
  if (!stage) throw new Error("infra/runner.Dockerfile has no FROM");
  const instructions = stage.getInstructions();
  const only = (keyword: string) => {
    const found = instructions.filter((i) => i.getKeyword() === keyword);
    expect(found, `one ${keyword} in the runtime stage`).toHaveLength(1);
    return found[0] as (typeof found)[number];
  };
  const argv = (instruction: JSONInstruction) => instruction.getJSONStrings().map((s) => s.getJSONValue());
  const healthcheck = stage.getHEALTHCHECKs()[0];
  const healthcheckCommand = healthcheck?.getRawArgumentsContent()?.replace(/^.*?\bCMD\s+/s, "") ?? "";
  return {
    env: Object.fromEntries(stage.getENVs().flatMap((e) => e.getProperties().map((p) => [p.getName(), p.getValue() ?? ""]))),
    exposed: only("EXPOSE").getArguments().map((a) => Number(a.getValue().replace(/\/tcp$/, ""))),
    user: only("USER").getArguments()[0]?.getValue() ?? "",
    healthcheck: JSON.parse(healthcheckCommand) as string[],
    cmd: argv(stage.getCMDs()[0] as JSONInstruction),
    copiedFromContext: stage
      .getCOPYs()
      .filter((c) => c.getFromFlag() === null)
      .flatMap((c) => c.getArguments().slice(0, -1).map((a) => a.getValue())),
  };
}
const image = runtimeImage();
/** The runner's settings in the pod: the image's environment, then the ConfigMap's and the Secret's (envFrom wins). */
const podConfig = loadConfig({ ...image.env, ...configMap, ...secrets });

describe("the runner image (infra/runner.Dockerfile)", () => {
  it("configures settings the runner accepts, and exposes the ports the runner then listens on: the API's, and the metrics' apart", () => {
    const config = loadConfig({ ...image.env, ...secrets });
    expect(config.HVAR_DEVICE).toBe("cuda");
    expect(config.HVAR_METRICS_PORT).not.toBe(config.HVAR_RUNNER_PORT);
    expect(image.exposed).toEqual([config.HVAR_RUNNER_PORT, config.HVAR_METRICS_PORT]);
  });

  it("health-checks the runner's liveness route on that port", () => {
    const url = image.healthcheck.map((arg) => /https?:\/\/[^'"]+/.exec(arg)?.[0]).find(Boolean);
    expect(url && new URL(url)).toMatchObject({ port: String(podConfig.HVAR_RUNNER_PORT), pathname: "/healthz" });
  });

  it("starts the runner's entry point from files the build copies, all of which exist", () => {
    expect(image.copiedFromContext.length).toBeGreaterThan(3);
    // gpu-runner/models holds the shipped models, which a fresh clone may lack until they are fetched.
    for (const source of image.copiedFromContext.filter((s) => s !== "gpu-runner/models")) expect(existsSync(`${root}${source}`), source).toBe(true);
    const [node, ...args] = image.cmd;
    expect(node).toBe("node");
    const entry = args.at(-1) as string;
    expect(image.copiedFromContext.some((source) => entry === source || entry.startsWith(`${source}/`)), entry).toBe(true);
    expect(existsSync(`${root}${entry}`), entry).toBe(true);
  });

  it("sizes libuv's pool before the runner starts, from a file the build copies", () => {
    const preload = image.cmd[image.cmd.indexOf("--require") + 1] as string;
    expect(preload).toBe("./gpu-runner/bin/uv-threads.cjs");
    expect(image.copiedFromContext.some((source) => preload.startsWith(`./${source}/`))).toBe(true);
    expect(existsSync(`${root}${preload}`)).toBe(true);
    expect(image.env.UV_THREADPOOL_SIZE).toBeUndefined();
  });
});

describe("Kubernetes manifests", () => {
  it("are well-formed objects with a kind and a name: the runner's, and the Ingress that publishes it by default", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget", "Service"]);
    for (const o of objects) expect(o.metadata.name).toBe("hvar-runner");
  });

  it.runIf(kubectl)("render with kubectl kustomize, to the objects this test reads", () => {
    const rendered = spawnSync("kubectl", ["kustomize", `${root}infra/k8s`], { encoding: "utf8", timeout: 60_000 });
    expect(rendered.status, rendered.stderr).toBe(0);
    const names = (list: K8sObject[]) => list.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    const documents = parseAllDocuments(rendered.stdout).map((doc) => doc.toJS() as K8sObject);
    expect(names(documents)).toEqual(names(objects));
    for (const o of documents) expect(o.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("kustomize");
  });

  it("configure only settings the runner knows, with values it accepts", () => {
    for (const key of Object.keys(configMap)) expect(Object.keys(RunnerConfigSchema.shape)).toContain(key);
    expect(container.envFrom.map((e) => e.configMapRef?.name).filter(Boolean)).toEqual(["hvar-runner"]);
    expect(podConfig.HVAR_STORAGE).toBe("s3");
  });

  it("let the replicas answer for each other's jobs: one shared bucket, each named by its Pod", () => {
    expect(podConfig).toMatchObject({ HVAR_STORAGE: "s3", HVAR_S3_BUCKET: "hvar-results" });
    expect(container.env?.find((e) => e.name === "HVAR_REPLICA_ID")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
    expect(podConfig.HVAR_JOB_STALE_MS).toBeLessThan(10_000); // the worker's RUNNER_TIMEOUT_MS: a cancel may wait this long
  });

  it("probe liveness on /healthz and readiness on /readyz where the pod's runner listens", () => {
    const port = container.ports.find((p) => p.name === container.livenessProbe.httpGet.port);
    expect(port?.containerPort).toBe(podConfig.HVAR_RUNNER_PORT);
    expect([container.startupProbe, container.livenessProbe, container.readinessProbe].map((p) => [p.httpGet.path, p.httpGet.port])).toEqual([
      ["/healthz", port?.name],
      ["/healthz", port?.name],
      ["/readyz", port?.name],
    ]);
    const service = byKind("Service").spec as { ports: { targetPort: string }[] };
    expect(service.ports.map((p) => p.targetPort)).toEqual([port?.name]);
  });

  it("scrape /metrics on the runner's metrics port, which the Service does not route", () => {
    expect(pod.metadata.annotations["prometheus.io/path"]).toBe("/metrics");
    expect(Number(pod.metadata.annotations["prometheus.io/port"])).toBe(podConfig.HVAR_METRICS_PORT);
    const metricsPort = container.ports.find((p) => p.containerPort === podConfig.HVAR_METRICS_PORT);
    expect(metricsPort?.name).toBe("metrics");
    const service = byKind("Service").spec as { ports: { targetPort: string }[] };
    expect(service.ports.map((p) => p.targetPort)).not.toContain(metricsPort?.name);
  });

  it("tell the runner the CPUs it asks for, which its threads are sized by (the container sees the node's)", () => {
    const cpus = container.env?.find((e) => e.name === "HVAR_CPUS")?.valueFrom?.resourceFieldRef;
    expect(cpus).toEqual({ resource: "requests.cpu", divisor: "1" });
    expect(Number(container.resources.requests.cpu)).toBeGreaterThanOrEqual(4);
  });

  it("run as the image's non-root user, on one GPU, with time to drain", () => {
    const { runAsNonRoot, runAsUser, runAsGroup } = podSpec.securityContext;
    expect(runAsNonRoot).toBe(true);
    expect(image.user).toBe(`${runAsUser}:${runAsGroup}`);
    expect(container.resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });

  it("autoscale on a queue-depth metric the runner exports, through the adapter rule", async () => {
    const hpa = byKind("HorizontalPodAutoscaler").spec as { metrics: { pods: { metric: { name: string } } }[] };
    const name = hpa.metrics[0]?.pods.metric.name as string;
    const metrics = new RunnerMetrics({ queuedTiles: () => 0, jobsByStatus: () => ({ queued: 0, running: 0 }) });
    expect(await metrics.registry.metrics()).toMatch(new RegExp(`^${name} 0$`, "m"));
    const [adapter] = yamlDocuments<{ rules: { custom: { seriesQuery: string; name: { as: string } }[] } }>("infra/k8s/prometheus-adapter-rules.yaml");
    const rule = adapter?.rules.custom.find((r) => r.name.as === name);
    expect(rule?.seriesQuery.split("{")[0]).toBe(name);
  });

  it("autoscale on the job queue's backlog too: an external metric from the gauge the runners export, through the adapter's external rule", async () => {
    const hpa = byKind("HorizontalPodAutoscaler").spec as { metrics: { type: string; external?: { metric: { name: string }; target: { type: string } } }[] };
    const external = hpa.metrics.find((m) => m.type === "External")?.external;
    expect(external?.target.type).toBe("AverageValue");
    const [adapter] = yamlDocuments<{ rules: { external: { seriesQuery: string; name: { matches: string; as: string } }[] } }>("infra/k8s/prometheus-adapter-rules.yaml");
    const rule = adapter?.rules.external.find((r) => r.name.as === external?.metric.name);
    const series = rule?.seriesQuery.split("{")[0] as string;
    expect(rule?.name.matches).toBe(series);
    const metrics = new RunnerMetrics({ queuedTiles: () => 0, jobsByStatus: () => ({ queued: 0, running: 0 }) });
    metrics.queueBacklog(7);
    expect(await metrics.registry.metrics()).toMatch(new RegExp(`^${series} 7$`, "m"));
  });
});

describe("the job queue's pull consumer (infra/queue-consumer.ts)", () => {
  const queue = jobQueueOf(`${root}wrangler.toml`);
  const [createDlq, addConsumer] = consumerCommands(queue) as [string[], string[]];
  const flag = (name: string) => addConsumer[addConsumer.indexOf(name) + 1];

  it("is added to the queue the worker's JOBS_QUEUE sends to, with a dead-letter queue of its own that is created first", () => {
    expect(queue).toBe("hvar-jobs");
    expect(addConsumer.slice(0, 5)).toEqual(["queues", "consumer", "http", "add", queue]);
    expect(flag("--dead-letter-queue")).not.toBe(queue);
    expect(createDlq).toEqual(["queues", "create", flag("--dead-letter-queue")]);
    expect(Number(flag("--message-retries"))).toBeGreaterThanOrEqual(1);
  });

  it("leases a job for less than the worker's deadline, so that a job whose runner died is delivered again in time", () => {
    const runner = loadConfig({});
    const { vars } = deploymentOf(`${root}wrangler.toml`);
    expect(Number(flag("--visibility-timeout-secs")) * 1000).toBe(runner.HVAR_QUEUE_VISIBILITY_TIMEOUT_MS);
    expect(runner.HVAR_QUEUE_VISIBILITY_TIMEOUT_MS).toBeLessThan(Number(vars.JOB_TIMEOUT_S) * 1000);
  });

  it("uses only options this wrangler's `queues consumer http add` takes", () => {
    const help = spawnSync(`${root}node_modules/.bin/wrangler`, ["queues", "consumer", "http", "add", "--help"], { encoding: "utf8", timeout: 60_000 });
    expect(help.status, help.stderr).toBe(0);
    for (const option of addConsumer.filter((a) => a.startsWith("--"))) expect(help.stdout).toContain(option);
  });
});

describe("R2 lifecycle rules (infra/r2-lifecycle.ts)", () => {
  const deployment = deploymentOf(`${root}wrangler.toml`);
  const { rules } = lifecycleRules(deployment.vars);
  const expiryDays = (key: string) => {
    const rule = rules.find((r) => "deleteObjectsTransition" in r && key.startsWith(r.conditions.prefix));
    return rule && "deleteObjectsTransition" in rule ? rule.deleteObjectsTransition.condition.maxAge / 86_400 : null;
  };

  it("are applied to the bucket the worker stores results in", () => {
    expect(deployment.bucket).toBe("hvar-results");
  });

  it("expire runner records RESULT_TTL_DAYS after upload, and result files, which cache hits share, twice that", () => {
    const days = Number(deployment.vars.RESULT_TTL_DAYS);
    expect(days).toBeGreaterThan(0);
    expect(expiryDays(resultKey("j_abcdefghijklmnopqrst", 4, "png"))).toBe(2 * days);
    expect(expiryDays(jobRecordKey("j_abcdefghijklmnopqrst"))).toBe(days);
  });

  it("expire a leftover input after its job's deadline, and never a job's input before it", () => {
    const inputDays = expiryDays(inputKey("j_abcdefghijklmnopqrst")) ?? 0;
    expect(inputDays * 86_400).toBeGreaterThan(Number(deployment.vars.JOB_TIMEOUT_S));
    const slow = lifecycleRules({ ...deployment.vars, JOB_TIMEOUT_S: String(2 * 86_400) }).rules.find((r) => r.id === "hvar-inputs");
    expect(slow && "deleteObjectsTransition" in slow ? slow.deleteObjectsTransition.condition.maxAge : 0).toBeGreaterThan(2 * 86_400);
  });

  it("follow a deployment's own retention setting", () => {
    const results = lifecycleRules({ RESULT_TTL_DAYS: "7" }).rules.find((r) => r.id === "hvar-results");
    expect(results && "deleteObjectsTransition" in results ? results.deleteObjectsTransition.condition.maxAge : 0).toBe(14 * 86_400);
  });

  it("keep R2's default rule that aborts abandoned multipart uploads, which setting the rules would otherwise drop", () => {
    expect(rules).toContainEqual(expect.objectContaining({ id: "Default Multipart Abort Rule", abortMultipartUploadsTransition: { condition: { type: "Age", maxAge: 7 * 86_400 } } }));
  });
});

interface Selecting {
  kind: string;
  metadata: { name: string };
  spec: { selector?: { matchLabels?: Record<string, string> } | Record<string, string>; template?: { metadata: { labels: Record<string, string> } } };
}

interface TunnelConfig {
  "credentials-file": string;
  ingress: { hostname?: string; path?: string; service: string }[];
}

describe("the edge's way to the runners (infra/k8s/edge)", () => {
  const tunnel = kustomize("infra/k8s", ["edge/tunnel"]);
  const tunnelConfig = parseAllDocuments(tunnel.find((o) => o.kind === "ConfigMap" && o.metadata.name === "hvar-tunnel")?.data?.["config.yaml"] ?? "")[0]?.toJS() as TunnelConfig;
  const service = byKind("Service") as K8sObject & { spec: { ports: { name: string; port: number; targetPort: string }[] } };
  const ingress = byKind("Ingress") as K8sObject & {
    metadata: { annotations: Record<string, string> };
    spec: {
      tls: { hosts: string[]; secretName: string }[];
      rules: { host: string; http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: { name: string } } } }[] } }[];
    };
  };
  // Every route the worker calls, all of them signed by it (packages/contract), and the runner's unsigned ones.
  const signedPaths = [createJobPath("j_x", { scales: [2], format: "png", quality: null, temperature: 0, cleanup: 1 }, { width: 8, height: 8 }), jobPath("j_x"), outputPath("j_x", 2), cancelJobPath("j_x")];
  const unsignedPaths = ["/healthz", "/readyz", "/metrics"];

  it("keep every Deployment's selector on its own pods, and every Service and budget on one Deployment's pods", () => {
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    for (const set of [objects, tunnel] as unknown as Selecting[][]) {
      const deployments = set.filter((o) => o.kind === "Deployment");
      for (const d of deployments) {
        expect(matches((d.spec.selector as { matchLabels: Record<string, string> }).matchLabels, d.spec.template?.metadata.labels ?? {}), d.metadata.name).toBe(true);
      }
      for (const o of set.filter((o) => o.kind === "Service" || o.kind === "PodDisruptionBudget")) {
        const selector = o.kind === "Service" ? (o.spec.selector as Record<string, string>) : (o.spec.selector as { matchLabels: Record<string, string> }).matchLabels;
        expect(deployments.filter((d) => matches(selector, d.spec.template?.metadata.labels ?? {})), `${o.kind}/${o.metadata.name}`).toHaveLength(1);
      }
    }
  });

  it("publish, through the Ingress, the runner Service's port and only the paths the worker signs", () => {
    const paths = ingress.spec.rules.flatMap((r) => r.http.paths);
    expect(paths.map((p) => [p.backend.service.name, p.backend.service.port.name])).toEqual([[service.metadata.name, service.spec.ports[0]?.name]]);
    const published = (path: string) => paths.some((p) => p.pathType === "Prefix" && (path === p.path || path.startsWith(`${p.path}/`) || path.startsWith(`${p.path}?`)));
    for (const path of signedPaths) expect(published(path), path).toBe(true);
    for (const path of unsignedPaths) expect(published(path), path).toBe(false);
    // The signature covers the path and the query: nothing may rewrite them on the way.
    expect(Object.keys(ingress.metadata.annotations).filter((a) => /rewrite|snippet/.test(a))).toEqual([]);
  });

  it("serve the Ingress's host over TLS, with a certificate from cert-manager", () => {
    expect(ingress.spec.tls.flatMap((t) => t.hosts)).toEqual(ingress.spec.rules.map((r) => r.host));
    expect(ingress.spec.tls[0]?.secretName).toBeTruthy();
    expect(ingress.metadata.annotations["cert-manager.io/cluster-issuer"]).toBeTruthy();
  });

  it("let the largest image the runner accepts through the Ingress, and outwait the worker's own timeout", () => {
    const size = /^(\d+)([km])$/i.exec(ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"] ?? "");
    const bodyBytes = Number(size?.[1]) * (size?.[2]?.toLowerCase() === "m" ? 1024 * 1024 : 1024);
    const worker = deploymentOf(`${root}wrangler.toml`).vars;
    expect(bodyBytes).toBeGreaterThanOrEqual(podConfig.HVAR_MAX_BODY_BYTES);
    expect(bodyBytes).toBeGreaterThanOrEqual(Number(worker.MAX_UPLOAD_BYTES));
    for (const timeout of ["proxy-send-timeout", "proxy-read-timeout"]) {
      expect(Number(ingress.metadata.annotations[`nginx.ingress.kubernetes.io/${timeout}`]) * 1000, timeout).toBeGreaterThan(Number(worker.RUNNER_TIMEOUT_MS));
    }
  });

  it("route, through the Cloudflare Tunnel, only the paths the worker signs to the runner Service, and refuse the rest", () => {
    const rules = tunnelConfig.ingress;
    const routed = (path: string) => rules.find((r) => r.hostname !== undefined && new RegExp(r.path ?? "").test(path.split("?")[0] ?? ""))?.service;
    const target = new URL(rules[0]?.service ?? "");
    expect([target.hostname, Number(target.port)]).toEqual([service.metadata.name, service.spec.ports[0]?.port]);
    for (const path of signedPaths) expect(routed(path), path).toBe(rules[0]?.service);
    for (const path of unsignedPaths) expect(routed(path), path).toBeUndefined();
    expect(rules.at(-1)).toEqual({ service: "http_status:404" });
  });

  it("give cloudflared its config and credentials where they are mounted", () => {
    const deployment = tunnel.find((o) => o.kind === "Deployment" && o.metadata.name === "hvar-tunnel") as unknown as {
      spec: { template: { spec: { containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[]; volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[] } } };
    };
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const volumeOf = (path: string) => pod.volumes.find((v) => v.name === container?.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`))?.name);
    expect(volumeOf(container?.args[container.args.indexOf("--config") + 1] ?? "")?.configMap?.name).toBe("hvar-tunnel");
    expect(volumeOf(tunnelConfig["credentials-file"])?.secret?.secretName).toBe("hvar-tunnel");
  });
});
