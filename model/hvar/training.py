"""What the trainers (`train_tokenizer`, `train_transformer`, `train_floor`, `train_detail`) share; each
keeps its own flat loop with its knobs at the top, as nanoGPT's train.py does.

The run folder: besides the model, optimizer and step state (to resume), metrics as JSONL and the curves
drawn from them; a run is never overwritten, and a resumed one appends. The loop: threads, the budget
(steps and training time, both totals across resumes), the learning-rate schedule, the data seed, the
progress bar, and checkpoints every few minutes that never kill a run when they fail.
"""

import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

# Knobs the command line may change, also when resuming.
OVERRIDABLE = ("batch_size", "lr")


# ---- the run folder ---------------------------------------------------------------------------------------
def knobs_from(base: dict, args) -> dict:
    """`base` knobs (the preset's, or the resumed run's) with --batch-size / --lr where given."""
    return dict(base) | {k: getattr(args, k) for k in OVERRIDABLE if getattr(args, k)}


def saved_state(out: Path, resume: bool) -> dict | None:
    """The state to resume from, or None for a new run; refuses to resume nothing or to overwrite a run."""
    exists = (out / "state.json").exists()
    if resume and not exists:
        sys.exit(f"--resume: no checkpoint in {out}")
    if not resume and exists:
        sys.exit(f"{out} already holds a run: pass --resume or choose another --out")
    return json.loads((out / "state.json").read_text()) if resume else None


def load_optimizer_state(
    opt: torch.optim.Optimizer, out: Path, device: str | torch.device = "cpu", name: str = "optim.pt"
) -> None:
    if (out / name).exists():
        opt.load_state_dict(torch.load(out / name, weights_only=True, map_location=device))
    else:  # committed checkpoints keep the weights only; AdamW's moments rebuild in a few steps
        print(f"--resume: no {name} in {out}; the optimizer starts afresh", flush=True)


def save_optimizer_state(opt: torch.optim.Optimizer, out: Path, name: str = "optim.pt") -> None:
    """Replaced atomically, so a kill never leaves half a file."""
    torch.save(opt.state_dict(), out / (name + ".tmp"))
    os.replace(out / (name + ".tmp"), out / name)


def save_training_state(out: Path, opt: torch.optim.Optimizer, state: dict) -> None:
    """optim.pt and state.json, each replaced atomically so a kill never leaves half a file."""
    save_optimizer_state(opt, out)
    (out / "state.json.tmp").write_text(json.dumps(state, indent=2))
    os.replace(out / "state.json.tmp", out / "state.json")


class Metrics:
    """metrics.jsonl: one JSON object per line, appended across resumes and flushed at once, so that
    curves can be drawn while the run goes on. Disabled (writes nothing) on all but one process."""

    def __init__(self, out: Path, enabled: bool = True):
        self.file = open(out / "metrics.jsonl", "a") if enabled else None  # noqa: SIM115 (see close)

    def write(self, row: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_curves(out: Path, draw: Callable[[list[dict], list], None]) -> None:
    """curves.png: three panels over the run's metrics.jsonl, drawn by `draw(rows, axes)`."""
    rows = read_metrics(out / "metrics.jsonl")
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    draw(rows, axes)
    for ax in axes:
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:  # a run shorter than its first logged row has none yet
            ax.legend()
    fig.tight_layout()
    canvas = io.BytesIO()
    fig.savefig(canvas, format="png", dpi=100)
    plt.close(fig)
    # a palette of 256 colours draws lines as well at a third of the bytes: checkpoints keep their curves,
    # and every byte of the repository travels with each GPU call
    palette = Image.open(canvas).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    palette.save(out / "curves.png", optimize=True)


def periodic(step: int, *saves: Callable[[], None]) -> None:
    """Runs the periodic saves; a failure (full disk, a package reinstalled under a running job) is
    reported and retried next period instead of killing hours of training."""
    try:
        for save in saves:
            save()
    except Exception as e:  # noqa: BLE001
        print(f"warning: checkpoint at step {step} failed: {e!r}", flush=True)


def log_evaluation(step: int, evaluate: Callable[[], dict], metrics: "Metrics", seconds: float = 0.0) -> dict:
    """A quick evaluation: a metrics row, also printed as the run's progress, and returned."""
    row = {"step": step} | evaluate()
    metrics.write(row)
    print(json.dumps(row | {"seconds": round(seconds)}), flush=True)
    return row


# ---- the loop ---------------------------------------------------------------------------------------------
def set_threads(threads: int, processes: int = 1) -> None:
    """torch's CPU threads: `threads`, or (0) the cores shared evenly between the processes."""
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // processes))
    torch.backends.nnpack.set_flags(False)  # unsupported on these CPUs; avoids a warning per conv


class Budget:
    """When a run stops: after `steps` steps or `minutes` of training, whichever comes first, both
    counted from the start of the run across resumes (`elapsed_s`: the time already spent)."""

    def __init__(self, steps: float, minutes: float, elapsed_s: float = 0.0):
        self.steps, self.seconds = steps, minutes * 60 if minutes else math.inf
        self.started = time.time() - elapsed_s

    def elapsed(self) -> float:
        """Training seconds so far, across resumes."""
        return time.time() - self.started

    def progress(self, step: int) -> float:
        """How far the run is, 0 -> 1: by steps, or by time where that ends it sooner (0 steps: done)."""
        by_steps = step / self.steps if self.steps else 1.0
        return max(by_steps, self.elapsed() / self.seconds)

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1


def learning_rate(step: int, peak: float, warmup: int, progress: float | None = None) -> float:
    """Linear warmup to `peak` over the first `warmup` steps; then constant, or, given how far the run is
    (`progress`, 0 -> 1), a cosine from peak down to 1% of it."""
    if step < warmup or progress is None:
        return peak * min(1.0, (step + 1) / warmup)
    t = min(1.0, max(0.0, progress))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def set_learning_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group at `lr`, times the group's `lr_mult` if it has one (a new part that must catch up)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def adamw(
    named_params: Iterable[tuple[str, torch.nn.Parameter]],
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    decays: Callable[[str, torch.nn.Parameter], bool],
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on those `decays` picks (matrices) and none
    on the rest (norms, biases, tables); the groups in that order, as the saved optimizer states have them."""
    decay, no_decay = [], []
    for name, p in named_params:
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    groups = [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def data_seed(seed: int, step: int, rank: int = 0) -> int:
    """The seed of the data (and noise) streams: a resumed run draws new batches instead of replaying the
    ones it has seen, and every process its own."""
    return seed * 7919 + step + 1_000_003 * rank


def progress_bar(step: int, steps: float, enabled: bool = True):
    from tqdm import tqdm

    total = None if math.isinf(steps) else steps
    return tqdm(total=total, initial=step, mininterval=10, file=sys.stdout, disable=not enabled)


class Means:
    """Running means of a step's logged values, reset when read (one metrics row per period)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {k: v / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class Every:
    """True once every `minutes` of wall time (the checkpoint period)."""

    def __init__(self, minutes: float):
        self.seconds, self.last = minutes * 60, time.time()

    def due(self) -> bool:
        if time.time() - self.last <= self.seconds:
            return False
        self.last = time.time()
        return True
