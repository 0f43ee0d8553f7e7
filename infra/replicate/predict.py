"""The hvar model on Replicate: a Cog predictor over the GPU runner itself.

setup() starts the runner's HTTP server (gpu-runner/src/main.ts, the server `npm start` and the runner
pool run) on loopback with the shipped model loaded; predict() hands it the image as a signed job,
waits for it and returns its outputs as files. So a prediction runs the same TypeScript pipeline
(decode, tiling, ONNX model, blending, encoding) as a runner of the pool, and gives the same pixels.

The inputs and the Output object are the contract of packages/contract/src/replicate.ts (the worker's
Replicate backend), committed as infra/replicate/schema.json; test_predict.py checks that the schema Cog
makes of this file is that one.
"""

import hashlib
import hmac
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cog import BaseModel, BasePredictor, Input, Path

# The repository root, two folders up: Cog's build context (/src in the image), where the runner's files are.
ROOT = pathlib.Path(__file__).resolve().parents[2]
# How long the runner may take to load and check the model (CUDA's first session is the slow part).
READY_TIMEOUT_S = 300
FORMATS = ["png", "webp", "avif", "jpeg"]


class Output(BaseModel):
    """One file per scale asked for; Cog writes the others as null."""

    x1: Path | None
    x2: Path | None
    x4: Path | None


class RunnerError(Exception):
    """The runner refused or failed the job: its stable code and title, as the prediction's error."""

    def __init__(self, code: str, title: str):
        super().__init__(f"{code}: {title}")
        self.code = code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """The runner's HTTP server as a child process, and a signed client of its API (gpu-runner/API.md)."""

    def __init__(self):
        self.secret = secrets.token_hex(32)
        self.storage = tempfile.mkdtemp(prefix="hvar-runner-")
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        node = os.environ.get("HVAR_NODE") or shutil.which("node") or "node"
        self.process = subprocess.Popen(
            # as the runner image starts it: libuv's pool sized by the CPUs first (bin/uv-threads.cjs)
            [node, "--require", "./gpu-runner/bin/uv-threads.cjs"]
            + ["--import", "tsx", "gpu-runner/src/main.ts"],
            cwd=ROOT,
            env={
                **os.environ,
                "HVAR_RUNNER_HOST": "127.0.0.1",
                "HVAR_RUNNER_PORT": str(port),
                "HVAR_METRICS_PORT": str(_free_port()),
                "RUNNER_HMAC_SECRET": self.secret,
                "HVAR_STORAGE": "local",
                "HVAR_STORAGE_DIR": self.storage,
                "HVAR_LOG_LEVEL": os.environ.get("HVAR_LOG_LEVEL", "warn"),
            },
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the runner exited with {self.process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.close()
        raise RuntimeError(f"the runner was not ready within {READY_TIMEOUT_S} s")

    def request(self, method: str, path_and_query: str, body: bytes = b"") -> bytes:
        """A request signed as the worker signs it (packages/contract/src/signing.ts).

        The runner's problem+json answer is raised as a RunnerError of its code and title.
        """
        timestamp = str(int(time.time()))
        signing_input = "\n".join([method, path_and_query, timestamp, hashlib.sha256(body).hexdigest()])
        signature = hmac.new(self.secret.encode(), signing_input.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            self.base + path_and_query,
            data=body if method == "POST" else None,
            method=method,
            headers={"X-Hvar-Timestamp": timestamp, "X-Hvar-Signature": f"v1={signature}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            problem = json.loads(error.read() or b"{}")
            code = problem.get("code", f"http_{error.code}")
            raise RunnerError(code, problem.get("title", error.reason)) from None

    def upscale(self, image: bytes, **options) -> dict:
        """Runs one job of these job query options (API.md) to its end; returns its Job once it succeeded."""
        job_id = f"r_{uuid.uuid4().hex}"
        given = {name: value for name, value in options.items() if value != ""}
        query = urllib.parse.urlencode({"id": job_id, **given})
        self.request("POST", f"/v1/jobs?{query}", image)
        wait = 0.02
        while True:
            job = json.loads(self.request("GET", f"/v1/jobs/{job_id}"))
            if job["status"] == "succeeded":
                return job
            if job["status"] == "failed":
                raise RunnerError(job["error"]["code"], job["error"]["title"])
            time.sleep(wait)
            wait = min(wait * 2, 0.5)

    def output(self, job_id: str, scale: int) -> bytes:
        return self.request("GET", f"/v1/jobs/{job_id}/outputs/{scale}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.storage, ignore_errors=True)


class Predictor(BasePredictor):
    def setup(self) -> None:
        """Starts the runner with the shipped model (gpu-runner/models) loaded; it serves every prediction."""
        self.runner = Runner()

    def predict(
        self,
        image: Path = Input(
            description="The image to upscale: a URL or a data URI (PNG, JPEG, WebP, AVIF, GIF).",
        ),
        scales: str = Input(
            description="Comma-separated scales to make, of 1, 2, 4.",
            default="1,2,4",
            regex="^[124](,[124])*$",
        ),
        format: str = Input(description="The outputs' format.", default="png", choices=FORMATS),
        quality: int = Input(
            description="The quality of lossy formats; ignored for PNG.",
            default=85,
            ge=1,
            le=100,
        ),
        temperature: float = Input(
            description=(
                "Sampling temperature of the generated detail; 0 is greedy. A deterministic model "
                "(the hvar 2.x floor) makes the same pixels at every temperature and runs at 0."
            ),
            default=0.0,
            ge=0.0,
            le=10.0,
        ),
        cleanup: str = Input(
            description=(
                "How strongly x1 cleans the input of noise, blur and compression before it is upscaled: "
                "1 fully, 0 not at all (the input's grain kept), or auto (the default): 1 for a plainly "
                "noisy photo; for one sent as a JPEG, 0.25 from quality 95, 0.5 from quality 90; else 0.75. "
                "A model without the setting cleans fully."
            ),
            default="auto",
            regex="^(auto|0(\\.[0-9]{1,3})?|1(\\.0{1,3})?)$",
        ),
        size: str = Input(
            description=(
                "The size the image must decode to, <width>x<height> (what the caller billed), "
                "else the prediction fails with image_size_mismatch; empty: any."
            ),
            default="",
            regex="^([1-9][0-9]{0,5}x[1-9][0-9]{0,5})?$",
        ),
    ) -> Output:
        # The runner's job query has the same names; an empty size is no size.
        job = self.runner.upscale(
            image.read_bytes(),
            scales=scales,
            format=format,
            quality=quality,
            temperature=temperature,
            cleanup=cleanup,
            size=size,
        )
        folder = Path(tempfile.mkdtemp(prefix="hvar-outputs-"))
        files = {}
        for output in job["outputs"]:
            scale = output["scale"]
            path = folder / f"x{scale}.{format}"
            path.write_bytes(self.runner.output(job["id"], scale))
            files[scale] = Path(path)
        return Output(x1=files.get(1), x2=files.get(2), x4=files.get(4))
