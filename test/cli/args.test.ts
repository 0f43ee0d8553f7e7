import { describe, expect, it } from "vitest";
import { UsageError, connectionOf, parseCommand, parseScales } from "../../packages/cli/src/args";

const usageError = (argv: string[]) => {
  try {
    parseCommand(argv);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`${argv.join(" ")} parsed`);
};

describe("hvar's command line", () => {
  it("reads an upscale of files and URLs with its options", () => {
    expect(parseCommand(["upscale", "photo.jpg", "https://img.example/cat.png", "--scales", "2,4", "--out", "out/", "--format", "webp", "--quality", "80", "--temperature", "0.5", "--cleanup", "0.3", "--json"])).toEqual({
      name: "upscale",
      inputs: ["photo.jpg", "https://img.example/cat.png"],
      out: "out/",
      scales: [2, 4],
      format: "webp",
      quality: 80,
      temperature: 0.5,
      cleanup: 0.3,
      timeoutS: 600,
      globals: { json: true },
    });
  });

  it("reads --cleanup auto as the image's own strength", () => {
    expect(parseCommand(["upscale", "photo.jpg", "--cleanup", "auto"])).toMatchObject({ cleanup: "auto" });
  });

  it("leaves the options it is not given to the deployment, and writes to the current folder", () => {
    expect(parseCommand(["upscale", "photo.jpg", "-o", "x", "--url", "http://127.0.0.1:8787"])).toEqual({ name: "upscale", inputs: ["photo.jpg"], out: "x", timeoutS: 600, globals: { json: false, url: "http://127.0.0.1:8787" } });
    expect(parseCommand(["upscale", "photo.jpg"])).toMatchObject({ out: "." });
  });

  it("reads the job commands, list's filters and usage's range", () => {
    expect(parseCommand(["get", "j_1"])).toMatchObject({ name: "get", id: "j_1" });
    expect(parseCommand(["cancel", "j_1", "--json"])).toMatchObject({ name: "cancel", id: "j_1", globals: { json: true } });
    expect(parseCommand(["delete", "j_1"])).toMatchObject({ name: "delete", id: "j_1" });
    expect(parseCommand(["list", "--status", "running", "--limit", "5", "--cursor", "c1"])).toEqual({ name: "list", status: "running", limit: 5, cursor: "c1", globals: { json: false } });
    expect(parseCommand(["usage", "--granularity", "day", "--from", "2026-01-01", "--to", "2026-01-31"])).toEqual({ name: "usage", granularity: "day", from: "2026-01-01", to: "2026-01-31", globals: { json: false } });
    expect(parseCommand(["model", "--json"])).toEqual({ name: "model", globals: { json: true } });
  });

  it("reads --help and --version anywhere they make sense", () => {
    expect(parseCommand([])).toMatchObject({ name: "help" });
    expect(parseCommand(["--help"])).toMatchObject({ name: "help" });
    expect(parseCommand(["upscale", "--help"])).toMatchObject({ name: "help", topic: "upscale" });
    expect(parseCommand(["help", "list"])).toMatchObject({ name: "help", topic: "list" });
    expect(parseCommand(["--version"])).toMatchObject({ name: "version" });
    expect(parseCommand(["-v"])).toMatchObject({ name: "version" });
  });

  it.each([
    [["resize", "a.png"], "unknown command 'resize'"],
    [["upscale"], "no image given"],
    [["upscale", "a.png", "--scales", "3"], "--scales is a comma-separated subset of 1,2,4, not '3'"],
    [["upscale", "a.png", "--scales", "2,2"], "not '2,2'"],
    [["upscale", "a.png", "--format", "gif"], "--format is one of png, webp, avif, jpeg, auto, not 'gif'"],
    [["upscale", "a.png", "--quality", "101"], "--quality is a number from 1 to 100, not '101'"],
    [["upscale", "a.png", "--quality", "8.5"], "--quality is a whole number"],
    [["upscale", "a.png", "--temperature", "hot"], "--temperature is a number from 0 to 2"],
    [["upscale", "a.png", "--cleanup", "2"], "--cleanup is auto or a number from 0 to 1, not '2'"],
    [["upscale", "a.png", "--cleanup", "strong"], "--cleanup is auto or a number from 0 to 1, not 'strong'"],
    [["upscale", "a.png", "--timeout", "0"], "--timeout is a number from 1 up"],
    [["upscale", "a.png", "--bogus"], "Unknown option '--bogus'"],
    [["upscale", "a.png", "--status", "running"], "Unknown option '--status'"],
    [["get"], "get needs the upscale's id"],
    [["cancel", "j_1", "j_2"], "cancel takes one id"],
    [["list", "--status", "done"], "--status is one of queued, running, succeeded, failed, canceled, not 'done'"],
    [["list", "--limit", "0"], "--limit is a number from 1 to 100"],
    [["list", "extra"], "list takes no arguments"],
    [["usage", "--from", "yesterday"], "--from is a date, YYYY-MM-DD"],
    [["usage", "--granularity", "year"], "--granularity is day or month"],
  ])("refuses %j: %s", (argv, message) => {
    expect(usageError(argv)).toContain(message);
  });

  it("reads a comma-separated scale list, in the order given", () => {
    expect(parseScales("4, 1")).toEqual([4, 1]);
    expect(() => parseScales("")).toThrow(UsageError);
    expect(() => parseScales("2,")).toThrow(UsageError);
  });
});

describe("the deployment and key", () => {
  it("come from --url, else HVAR_URL, and HVAR_API_KEY", () => {
    const env = { HVAR_URL: "https://api.example.com", HVAR_API_KEY: "hvar_sk_x" };
    expect(connectionOf({ json: false }, env)).toEqual({ baseUrl: "https://api.example.com", apiKey: "hvar_sk_x" });
    expect(connectionOf({ json: false, url: "http://127.0.0.1:8787" }, env)).toEqual({ baseUrl: "http://127.0.0.1:8787", apiKey: "hvar_sk_x" });
  });

  it("are asked for when missing, and the URL must be http(s)", () => {
    expect(() => connectionOf({ json: false }, { HVAR_API_KEY: "k" })).toThrow("pass --url <https://...> or set HVAR_URL");
    expect(() => connectionOf({ json: false, url: "https://x" }, {})).toThrow("set HVAR_API_KEY");
    expect(() => connectionOf({ json: false, url: "ftp://x" }, { HVAR_API_KEY: "k" })).toThrow("is an http(s) URL, not 'ftp://x'");
  });
});
