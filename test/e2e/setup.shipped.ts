import { SHIPPED, stackSetup } from "./setup";

/**
 * Project `e2e-shipped` (shipped-model.test.ts): its own stack, serving the shipped models folder,
 * gpu-runner/models, as `npm start` does, whatever E2E_MODELS_DIR or HVAR_MODELS_DIR say. A missing
 * or broken model fails that project's tests with the reason, without stopping the other projects.
 */
export default stackSetup(SHIPPED, { failure: "report" });
