"""The model acceptance checks (`test/acceptance`: flat fields, gradients, colour, x1 never worse) on a
model folder, through the runner's own path: the export runs them on every model it writes, before
anything in its --out is replaced.

The checks are the TypeScript suite itself (vitest, in the repo's node_modules), run on a models
folder holding this one model; a check the suite lists as a known failure of this id@version runs as an
expected failure and is reported as such.

    python -m hvar.acceptance ../gpu-runner/models/hvar        # the report of one model folder
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from hvar.paths import REPO

VITEST = REPO / "node_modules" / ".bin" / "vitest"


@dataclass
class Report:
    model: str  # id@version, as the suite names it
    passed: list[str]
    failed: list[str]  # with the assertion that failed
    known_failures: list[str]  # failed as the suite expects of this model

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        return (f"{self.model}: {len(self.passed)} passed, {len(self.known_failures)} known failures, "
                f"{len(self.failed)} failed")  # fmt: skip


def available() -> str | None:
    """None where the suite can run here, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not VITEST.exists():
        return f"no {VITEST.relative_to(REPO)} (run npm ci in {REPO})"
    return None


def check(model_dir: Path, timeout_s: float = 900) -> Report:
    """Runs the suite on the model in `model_dir` (a folder with manifest.json and model.onnx)."""
    if (why := available()) is not None:
        raise RuntimeError(f"acceptance checks cannot run: {why}")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    with tempfile.TemporaryDirectory(prefix="hvar-acceptance-") as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(model_dir, models / manifest["id"])  # the runner finds exactly this model
        report = Path(tmp) / "report.json"
        # node_modules/.bin first, as `npm test` runs it: the repo's Node 22 (the `node` dev dependency)
        # loads the TypeScript workspace packages the suite's config imports; an older system Node cannot.
        path = f"{VITEST.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = os.environ | {"HVAR_MODELS_DIR": str(models), "HVAR_MODEL": manifest["id"], "PATH": path}
        command = [str(VITEST), "run", "--project", "acceptance", "--reporter=json", f"--outputFile={report}"]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
        if not report.exists():
            raise RuntimeError(
                f"the acceptance suite did not run (exit {done.returncode}):\n{done.stderr[-2000:]}"
            )
        results = [a for f in json.loads(report.read_text())["testResults"] for a in f["assertionResults"]]
    if not results:
        raise RuntimeError("the acceptance suite ran no checks")
    known = [a["title"] for a in results if a.get("meta", {}).get("knownFailure") and a["status"] == "passed"]
    return Report(
        model=f"{manifest['id']}@{manifest['version']}",
        passed=[a["title"] for a in results if a["status"] == "passed" and a["title"] not in known],
        failed=[f"{a['title']}: {first_line(a)}" for a in results if a["status"] != "passed"],
        known_failures=known,
    )


def first_line(result: dict) -> str:
    messages = result.get("failureMessages") or [result["status"]]
    return messages[0].splitlines()[0]


def summary(report: Report) -> dict:
    """What the manifest keeps: the suite's verdict on this very file."""
    return asdict(report) | {"suite": "test/acceptance"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model folder (manifest.json, model.onnx)")
    args = ap.parse_args(argv)
    if not (args.model / "manifest.json").is_file():
        ap.error(f"{args.model}: no manifest.json (a model folder, as hvar.export writes it)")
    if (why := available()) is not None:
        ap.error(f"the acceptance checks cannot run here: {why}")
    report = check(args.model)
    print(report.line())
    for line in report.failed:
        print(f"  FAILED {line}")
    for line in report.known_failures:
        print(f"  known failure: {line}")
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
