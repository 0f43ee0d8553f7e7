import { MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES } from "../../contract/src/vocabulary.js";
import { STATUSES } from "./args.js";

const CONNECTION = `The deployment is --url <url> or HVAR_URL; the API key is HVAR_API_KEY (never an option,
so it stays out of shell history and process lists; hvar never prints it).`;

const EXIT_CODES = `Exit codes:
  0  done
  1  the API refused (its problem's code and title are printed), or the job failed or was canceled
  2  usage: the command line, HVAR_URL/HVAR_API_KEY, or an input file that cannot be read
  3  no result: the deployment could not be reached, the job did not end within --timeout,
     or an output could not be downloaded or written`;

export const HELP = `Usage: hvar <command> [options]

Upscales images with an hvar deployment: x1 (cleaned), x2 and x4 from one model pass.

Commands:
  upscale <image>...   upscale files or https URLs and download the results
  get <id>             one upscale, with its outputs' signed URLs
  list                 the key's upscales, newest first
  cancel <id>          stop a queued or running upscale (refunded)
  delete <id>          delete a finished upscale's results now
  usage                the key's quota and billed megapixels
  model                the model served: version, scales, limits, generated detail

Options of every command:
  --url <url>          the deployment (default: HVAR_URL)
  --json               print the API's JSON (one object per line) instead of text
  -h, --help           help; \`hvar <command> --help\` for a command's options
  -v, --version        hvar's version

${CONNECTION}

  HVAR_URL=https://api.example.com HVAR_API_KEY=hvar_sk_... hvar upscale photo.jpg --scales 2,4 --out out/

${EXIT_CODES}
`;

const COMMAND_HELP: Record<string, string> = {
  upscale: `Usage: hvar upscale <image>... [options]

Upscales each image (a file, or an https URL the deployment fetches itself, under one of the key's
CDN origins), waits for it with a progress bar (plain lines when stderr is not a terminal), and
downloads every output to --out as <input-stem>.x<scale>.<ext>.

Options:
  -o, --out <dir>        output folder, made if missing (default: .)
  --scales <list>        any of ${SCALES.join(",")} (default: the deployment's, all three)
  --format <fmt>         ${[...OUTPUT_FORMATS, "auto"].join(" | ")} (default: the deployment's, auto)
  --quality <${MIN_QUALITY}-${MAX_QUALITY}>      for lossy formats
  --temperature <0-2>    sampling temperature of generated detail; 0 is greedy (a deterministic
                         model uses 0: \`hvar model\` says whether the served one samples)
  --cleanup <0-1|auto>   how strongly x1 cleans noise, blur and JPEG before upscaling: 1 for a badly
                         damaged photo, 0 keeps a clean photo's grain, auto reads the photo's noise
                         (default: the deployment's, \`hvar model\` says which and whether it applies)
  --timeout <s>          give up waiting after this long (default: 600); the job goes on
  --url, --json          as for every command; --json prints {input, files, job} per image

${EXIT_CODES}
`,
  get: `Usage: hvar get <id> [--json]

The upscale as it is now: status, progress, outputs (signed URLs, until they expire), error, billing.
`,
  list: `Usage: hvar list [--status <status>] [--limit <1-100>] [--cursor <cursor>] [--json]

The key's upscales, newest first (deleted ones left out). --status is one of
${STATUSES.join(", ")}. When there are more, the last line gives the --cursor of the next page.
`,
  cancel: `Usage: hvar cancel <id> [--json]

Stops a queued or running upscale on its runner; nothing is billed. An upscale that already ended
answers 409 (job_already_succeeded, job_already_failed): exit code 1.
`,
  delete: `Usage: hvar delete <id> [--json]

Deletes a finished upscale's results now: its signed URLs stop working. One still running answers
409 job_not_finished (cancel it first): exit code 1.
`,
  usage: `Usage: hvar usage [--granularity day|month] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]

The key's quota this month and its billed megapixels, jobs and cache hits by day or month.
`,
  model: `Usage: hvar model [--json]

The model the deployment serves: its version, scales, the limits an upload is checked against, and
whether it draws generated detail (only then does --temperature change the pictures) and whether
--cleanup applies.
`,
};

export const helpOf = (topic: string | undefined): string | undefined => (topic === undefined ? HELP : COMMAND_HELP[topic]);
