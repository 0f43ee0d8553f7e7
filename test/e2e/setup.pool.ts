import { E2E_MODELS_DIR, stackSetup } from "./setup";

/** Replicas behind the load balancer; one of them is killed mid-job, and the other two carry on. */
export const POOL_REPLICAS = 3;
/**
 * Each replica's throughput ceiling (HVAR_MAX_TILES_PER_SECOND): the test's 512x512 images (484 tiles
 * of the contract model) take at least 1.6 s each, two of them on one replica 3.2 s, however fast the
 * CPU: long enough to kill a replica while it works on one.
 */
export const POOL_TILES_PER_SECOND = 300;

/**
 * Project `e2e-pool` (runner-pool.test.ts): its own stack, with POOL_REPLICAS runners sharing one
 * store behind a round-robin proxy on loopback, the worker's only RUNNER_URLS entry, as a Kubernetes
 * Service is in front of a Deployment's Pods. Short heartbeats, so that a killed replica's jobs are
 * taken over within seconds.
 */
export default stackSetup(E2E_MODELS_DIR, {
  runnerReplicas: POOL_REPLICAS,
  balancer: true,
  runnerEnv: { HVAR_MAX_TILES_PER_SECOND: String(POOL_TILES_PER_SECOND), HVAR_JOB_HEARTBEAT_MS: "250", HVAR_JOB_STALE_MS: "2000" },
});
