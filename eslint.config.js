import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/.wrangler/**", "model/**", "worker/worker-configuration.d.ts", "worker/public/docs/**"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // The demo page's browser script: tsc (worker/tsconfig.demo.json) checks its names against the DOM.
    files: ["worker/public/**/*.js"],
    rules: { "no-undef": "off" },
  },
  {
    // Required by `node --require` before Node's thread pool starts, so CommonJS (an ES module loads too late).
    files: ["gpu-runner/bin/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { process: "readonly", require: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["scripts/**/*.{js,mjs}"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
);
