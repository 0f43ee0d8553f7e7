import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig, RunnerConfigSchema } from "../../gpu-runner/src/config";
import { RunnerMetrics } from "../../gpu-runner/src/server/metrics";

// No Docker engine or cluster runs here: these tests keep the deployment files consistent with the
// runner they deploy (ports, paths, settings, metric names), which is what breaks silently.

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, "utf8");

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function manifests(path: string): K8sObject[] {
  return parseAllDocuments(read(path)).map((doc) => {
    expect(doc.errors, `${path}: ${doc.errors.join("; ")}`).toEqual([]);
    return doc.toJS() as K8sObject;
  });
}

const objects = [...manifests("infra/k8s/runner-deployment.yaml"), ...manifests("infra/k8s/runner-hpa.yaml")];
const byKind = (kind: string) => objects.find((o) => o.kind === kind) as K8sObject;
// The Deployment's one container, typed loosely: this is a structural check of a YAML file.
const deployment = byKind("Deployment") as unknown as {
  spec: { template: { spec: { securityContext: { runAsUser: number }; terminationGracePeriodSeconds: number; containers: Record<string, never>[] } } };
};
const container = deployment.spec.template.spec.containers[0] as unknown as {
  ports: { containerPort: number }[];
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
  startupProbe: { httpGet: { path: string } };
  resources: { limits: Record<string, unknown> };
};
const dockerfile = read("infra/runner.Dockerfile");

describe("Kubernetes manifests", () => {
  it("are well-formed objects with a kind and a name", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]);
    for (const o of objects) expect(o.metadata.name).toBe("hvar-runner");
  });

  it("probe liveness on /healthz and readiness on /readyz, on the runner's port", () => {
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container.startupProbe.httpGet.path).toBe("/healthz");
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container.ports[0]?.containerPort).toBe(loadConfig({}).HVAR_RUNNER_PORT);
  });

  it("run as the image's non-root user, on one GPU, with time to drain", () => {
    expect(dockerfile).toContain(`USER ${deployment.spec.template.spec.securityContext.runAsUser}:`);
    expect(container.resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });

  it("configure only settings the runner knows, with values it accepts", () => {
    const data = byKind("ConfigMap").data ?? {};
    for (const key of Object.keys(data)) expect(Object.keys(RunnerConfigSchema.shape)).toContain(key);
    expect(() => loadConfig({ ...data, HVAR_S3_ACCESS_KEY_ID: "id", HVAR_S3_SECRET_ACCESS_KEY: "secret" })).not.toThrow();
  });

  it("autoscale on a queue-depth metric the runner exports, through the adapter rule", async () => {
    const hpa = byKind("HorizontalPodAutoscaler").spec as { metrics: { pods: { metric: { name: string } } }[] };
    const name = hpa.metrics[0]?.pods.metric.name as string;
    const metrics = new RunnerMetrics({ queuedTiles: () => 0, jobsByStatus: () => ({ queued: 0, running: 0 }) });
    expect(await metrics.registry.metrics()).toMatch(new RegExp(`^${name} 0$`, "m"));
    expect(read("infra/k8s/prometheus-adapter-rules.yaml")).toContain(`seriesQuery: '${name}{`);
  });
});

describe("runner.Dockerfile", () => {
  it("runs on CUDA 12 with cuDNN 9 and installs onnxruntime-node's CUDA 12 files", () => {
    expect(dockerfile).toMatch(/nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime/);
    expect(dockerfile).toContain("ONNXRUNTIME_NODE_INSTALL=cuda12");
  });

  it("has a healthcheck on /healthz and exposes the runner's port", () => {
    expect(dockerfile).toMatch(/HEALTHCHECK[^\n]*\n[^\n]*\/healthz/);
    expect(dockerfile).toContain(`EXPOSE ${loadConfig({}).HVAR_RUNNER_PORT}`);
  });

  it("copies only paths that exist and starts the runner's entry point", () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] as string).split(/\s+/));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources.filter((s) => s !== "gpu-runner/models")) expect(existsSync(`${root}${source}`), source).toBe(true);
    const entry = /^CMD \[.*"(gpu-runner\/src\/[^"]+)"\]$/m.exec(dockerfile)?.[1];
    expect(entry && existsSync(`${root}${entry}`)).toBe(true);
  });
});
