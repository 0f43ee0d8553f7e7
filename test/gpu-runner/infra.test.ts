import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DockerfileParser, type JSONInstruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig, RunnerConfigSchema } from "../../gpu-runner/src/config";
import { RunnerMetrics } from "../../gpu-runner/src/server/metrics";

// No Docker engine or cluster runs here. The image and the manifests are parsed (dockerfile-ast,
// yaml) and read for what they mean: that the runner they configure starts with those settings,
// listens where its probes, Service and scrapes look, and exports the metric the autoscaler reads.
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

const objects = [...yamlDocuments<K8sObject>("infra/k8s/runner-deployment.yaml"), ...yamlDocuments<K8sObject>("infra/k8s/runner-hpa.yaml")];
const byKind = (kind: string) => objects.find((o) => o.kind === kind) as K8sObject;
// The Deployment's pod, typed loosely: only the fields these checks read.
const pod = (byKind("Deployment").spec as { template: { metadata: { annotations: Record<string, string> }; spec: unknown } }).template;
const podSpec = pod.spec as { securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number }; terminationGracePeriodSeconds: number };
const container = (pod.spec as { containers: unknown[] }).containers[0] as {
  ports: { name: string; containerPort: number }[];
  envFrom: { configMapRef?: { name: string } }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  startupProbe: { httpGet: { path: string; port: string } };
  resources: { limits: Record<string, unknown> };
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
});

describe("Kubernetes manifests", () => {
  it("are well-formed objects with a kind and a name", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]);
    for (const o of objects) expect(o.metadata.name).toBe("hvar-runner");
  });

  it("configure only settings the runner knows, with values it accepts", () => {
    for (const key of Object.keys(configMap)) expect(Object.keys(RunnerConfigSchema.shape)).toContain(key);
    expect(container.envFrom.map((e) => e.configMapRef?.name).filter(Boolean)).toEqual(["hvar-runner"]);
    expect(podConfig.HVAR_STORAGE).toBe("s3");
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
});
