"""Fine-tune the restoration stage (`hvar.floor`) from the pretrained SPAN: L1 on x1, x2 and x4 over the
cached bicubic + realistic pairs (`hvar.pairs`), so it cleans noise, blur and JPEG instead of
sharpening them, while keeping what SPAN knows about clean inputs.

    python -m hvar.train_floor --out runs/floor-base --steps 8000          # new run from SPAN-ch28
    python -m hvar.train_floor --out runs/floor-base --steps 16000 --resume # go on (same or more steps)
    python -m hvar.train_floor --out runs/span-published --steps 0         # the peer, as a floor run
    python -m hvar.train_floor --init runs/floor-base --out runs/floor-more --lr 5e-5  # a new stage
    python -m hvar.train_floor --init runs/floor-base --preset wide --out runs/floor-wide  # grown wider
    python -m hvar.train_floor --init runs/floor-base --preset cascade --out runs/cascade \
        --freeze-upscaler     # floor-base's restoration in front of the published SPAN, the restorer trained

Each batch holds `--batch-size` x4 pairs and as many x2 pairs (each half bicubic, half realistic), one
random flip/rotation per batch; `--mild` gives a share of the bicubic pairs one faint defect on the fly
(a JPEG q75-95, noise or blur, `degrade.MILD`: x1 must then stay close to the clean input), `--light` a
share one defect of `degrade.light`'s whole range (JPEG q30-95, noise, blur: what x1 must repair when a
photo was damaged once, not by the realistic recipe's stack of defects), `--jpeg` a share a JPEG round
trip alone (q30-95 unless `--jpeg-quality` says otherwise: the defect of nearly every photo people send).
`--texture` (with `--restore-only`) replaces a share of them by a synthetic fine texture
(`pairs.fine_texture`), half of them through a JPEG of `--jpeg-quality`, which x1 must give back as it was.
The loss is the mean L1 of every output that has a target: x1 and x2 for all pairs, x4 for the x4 pairs. With
`--restore-only` (two stages) the restorer learns x1 alone and the upscaler is neither run nor trained: each
pair's x1 L1 is divided by its input's (plus `--relative-floor` levels), so a faint defect that x1 must nearly
leave alone weighs as much as the realistic recipe's heavy stack; a larger floor moves weight from the clean
and faint pairs to the heavy ones. The frozen SPAN upscales a faithful x1 best: in
400 steps from 2.3.0 this lifted x4 on clean, JPEG and realistic LR alike, where x2 and x4's losses through
SPAN had held the restorer in one band for thousands of steps. `--x2-only` (preset `cascade-x2`) trains
x2's own blocks and head alone on both kinds' x2 targets, the restorer and SPAN's body frozen. Every
`--eval-every` steps: PSNR-Y on Set5 (bicubic and realistic LR, x2 and x4 and x1) and x1's gain on the
acceptance ladder's faint rungs (`eval_sr.x1_ladder`), written to metrics.jsonl with the losses; the run
folder keeps floor.safetensors (the weights, small enough to commit), optim.pt, state.json and
curves.png, and resumes from them. `--damage-reader` puts a reader taught by `hvar.damage` in front of a
`cascade-context` floor's FiLM, frozen (the restorer's loss alone teaches a reading to tell photos apart).
"""

from __future__ import annotations

import argparse
import dataclasses
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar import training
from hvar.config import FLOOR_PRESETS
from hvar.degrade import MILD, jpeg_uint8, light
from hvar.floor import READER_FILE, Floor, cascade, from_span, grow, load_floor, load_reader, save_floor
from hvar.pairs import Pairs, fine_texture, unusable
from hvar.paths import SHARED

SPAN_WEIGHTS = SHARED / "pretrained/span-ch28/team38_span_ch28_slim.pth"
WARMUP = 200  # steps of linear warmup before the cosine
BETAS = (0.9, 0.99)
QUICK_LADDER = ("jpeg90", "jpeg60", "noise3", "blur0.8")  # x1's rungs scored during training
JPEG_QUALITY = (30, 95)  # --jpeg's default range, as degrade.light's
RELATIVE_FLOOR = 2.0  # --restore-only's default, in levels of 255: added to each input's L1 before dividing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--preset", choices=sorted(FLOOR_PRESETS),
                    help="a new run's size (default base); with --init, a wider preset grows the init "
                         "run, cascade puts the published SPAN after it")  # fmt: skip
    ap.add_argument(
        "--span", type=Path, default=SPAN_WEIGHTS, help="pretrained SPAN weights (all presets but tiny)"
    )
    ap.add_argument("--init", type=Path, help="a new run that starts from another floor run's weights")
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs"), help="hvar.pairs cache")
    ap.add_argument("--steps", type=int, default=8000,
                    help="0 writes the starting point: SPAN as published, the evaluation's peer")  # fmt: skip
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="training time in total (resumed runs count theirs); the learning-rate schedule "
                         "then follows whichever of steps and time runs out first")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=8, help="pairs of each kind per step")
    ap.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (cosine to 1%% of it)")
    ap.add_argument("--freeze-upscaler", action="store_true",
                    help="two stages: train the restorer only, through the upscaler as it is")  # fmt: skip
    ap.add_argument("--mild", type=float, default=0.0,
                    help="share of the clean pairs given one faint defect on the fly (degrade.MILD), so "
                         "that x1 learns to do no harm where there is little to repair")  # fmt: skip
    ap.add_argument("--light", type=float, default=0.0,
                    help="share of the clean pairs given one defect of degrade.light's whole range "
                         "(JPEG q30-95, noise sigma 1-25, blur 0.5-1.6): x1 learns to repair it")  # fmt: skip
    ap.add_argument("--jpeg", type=float, default=0.0,
                    help="share of the clean pairs given a JPEG round trip alone")  # fmt: skip
    ap.add_argument("--jpeg-quality", type=int, nargs=2, default=JPEG_QUALITY, metavar=("LO", "HI"),
                    help="--jpeg's qualities, drawn uniformly (default %(default)s)")  # fmt: skip
    ap.add_argument("--texture", type=float, default=0.0,
                    help="share of the clean pairs whose x1 pair is a synthetic fine texture, half of "
                         "them through a JPEG (--restore-only: x2 and x4 keep the photo's)")  # fmt: skip
    ap.add_argument("--restore-only", action="store_true",
                    help="two stages: train the restorer on x1 alone (each pair's L1 relative to its "
                         "input's); the upscaler is frozen and not run")  # fmt: skip
    ap.add_argument("--x2-only", action="store_true",
                    help="two stages: train x2's blocks and head alone (preset cascade-x2) on both kinds' x2 "
                         "targets; the restorer and the upscaler's body run frozen")  # fmt: skip
    ap.add_argument("--relative-floor", type=float, default=None, metavar="LEVELS",
                    help="--restore-only: levels of 255 added to each pair's input L1 before dividing "
                         f"by it (default {RELATIVE_FLOOR:g}); larger weighs heavy pairs more")  # fmt: skip
    ap.add_argument("--context-lr-mult", type=float, default=20.0,
                    help="the damage reading's (FloorConfig.context) learning rate over --lr: it starts at "
                         "zero and at --lr barely moves in a CPU run")  # fmt: skip
    ap.add_argument("--damage-reader", type=Path, metavar="RUN",
                    help="a new run with a context preset: the hvar.damage run whose reader reads the "
                         "damage, loaded and frozen; the FiLM from it and the restorer learn")  # fmt: skip
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-set", default="Set5", help="dev set scored during training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if args.steps < 0 or args.batch_size < 1 or args.eval_every < 1 or args.minutes < 0:
        ap.error("--steps and --minutes must be >= 0, --batch-size and --eval-every >= 1")
    if args.context_lr_mult <= 0:
        ap.error("--context-lr-mult must be > 0")
    shares = (args.mild, args.light, args.jpeg, args.texture)
    if min(shares) < 0 or sum(shares) > 1:
        ap.error("--mild, --light, --jpeg and --texture share the clean pairs: each >= 0, together <= 1")
    if args.relative_floor is None:
        args.relative_floor = RELATIVE_FLOOR
    elif not args.restore_only:
        ap.error("--relative-floor weighs x1's restore loss only: it needs --restore-only")
    elif args.relative_floor <= 0:
        ap.error("--relative-floor must be > 0 (levels of 255)")
    if args.x2_only and (args.restore_only or args.freeze_upscaler):
        ap.error("--x2-only trains x2's blocks and head alone: not with --restore-only or --freeze-upscaler")
    if args.texture and not args.restore_only:
        ap.error("--texture replaces x1's pair only: it needs --restore-only")
    if not 1 <= args.jpeg_quality[0] <= args.jpeg_quality[1] <= 100:
        ap.error("--jpeg-quality LO HI: 1 <= LO <= HI <= 100")
    if args.init and (args.resume or not (args.init / "floor.json").is_file()):
        ap.error("--init takes a floor run folder, and only for a new run")
    if not args.resume and not args.init and args.preset != "tiny" and not args.span.is_file():
        ap.error(f"--span: no such file {args.span}")
    if args.damage_reader is not None:
        width = FLOOR_PRESETS[args.preset].context if args.preset else 0
        if args.resume or not width:
            ap.error("--damage-reader starts a new run of a preset with a context (cascade-context)")
        if not (args.damage_reader / READER_FILE).is_file():
            ap.error(f"--damage-reader: no {READER_FILE} in {args.damage_reader} (python -m hvar.damage)")
    if (why := unusable(args.pairs)) is not None:
        ap.error(f"--pairs: {why}")
    return args


def starting_floor(args: argparse.Namespace) -> Floor:
    """A new run's floor: the preset started from the published SPAN, or the --init run's floor as it is,
    grown wider, or as the restorer in front of the published SPAN, as --preset asks."""
    cfg = FLOOR_PRESETS[args.preset or "base"]
    if not args.init:
        return from_span(cfg, args.span) if cfg.name != "tiny" else Floor(cfg)
    model = load_floor(args.init)
    if args.preset is None or cfg == model.cfg:
        return model
    if cfg.stages == 2 and model.cfg.stages == 1:
        return cascade(model, from_span(dataclasses.replace(cfg, stages=1), args.span), cfg)
    return grow(model, cfg)


def with_defects(
    batch: dict[str, dict[str, np.ndarray]],
    rng: np.random.Generator,
    mild: float,
    whole: float = 0.0,
    jpeg_share: float = 0.0,
    jpeg_quality: tuple[int, int] = JPEG_QUALITY,
    texture: float = 0.0,
) -> None:
    """Gives a share `mild` of the batch's clean pairs (input == x1 target) one faint defect, a share
    `whole` one defect of `light`'s whole range and a share `jpeg_share` a JPEG round trip of a quality
    in `jpeg_quality`, and turns a share `texture` into a fine texture with itself or its JPEG as the
    input (x1's pair only), in place."""
    for arrays in batch.values():
        for i, (lr, t1) in enumerate(zip(arrays["lr"], arrays["t1"], strict=True)):
            if not np.array_equal(lr, t1):
                continue
            u = rng.random()
            if u < mild:
                arrays["lr"][i] = light(t1, rng, **MILD)
            elif u < mild + whole:
                arrays["lr"][i] = light(t1, rng)
            elif u < mild + whole + jpeg_share:
                arrays["lr"][i] = jpeg_uint8(t1, round(rng.uniform(*jpeg_quality)))
            elif u < mild + whole + jpeg_share + texture:
                arrays["t1"][i] = fine_texture(rng, t1.shape[0])
                jpeg_it = rng.random() < 0.5
                q = round(rng.uniform(*jpeg_quality))
                arrays["lr"][i] = jpeg_uint8(arrays["t1"][i], q) if jpeg_it else arrays["t1"][i]


def to_tensors(
    batch: dict[str, dict[str, np.ndarray]], k: int, device: torch.device | str = "cpu"
) -> dict[str, dict[str, torch.Tensor]]:
    """uint8 NHWC -> float NCHW in [0, 1] on `device`, every array of the batch turned by the same
    k * 90 degrees (k >= 4: mirrored first). Bytes travel to the device, floats are made there."""

    def conv(a: np.ndarray) -> torch.Tensor:
        return dihedral(
            torch.from_numpy(np.ascontiguousarray(a)).to(device).permute(0, 3, 1, 2).float().div(255), k
        )

    return {kind: {name: conv(a) for name, a in arrays.items()} for kind, arrays in batch.items()}


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """B C H W turned k * 90 degrees, mirrored first for k >= 4: one of the square's 8 symmetries."""
    x = x.flip(-1) if k >= 4 else x
    return torch.rot90(x, k % 4, dims=(-2, -1))


def floor_loss(
    model: Floor, batch: dict[str, dict[str, torch.Tensor]]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean L1 over the outputs with a target: x1, x2 of both kinds, x4 of the x4 pairs."""
    n4 = batch["x4"]["lr"].shape[0]
    lr = torch.cat([batch["x4"]["lr"], batch["x2"]["lr"]])
    x1, x2, x4 = model(lr)
    parts = {
        "x1": F.l1_loss(x1, torch.cat([batch["x4"]["t1"], batch["x2"]["t1"]])),
        "x2": F.l1_loss(x2, torch.cat([batch["x4"]["t2"], batch["x2"]["t2"]])),
        "x4": F.l1_loss(x4[:n4], batch["x4"]["t4"]),
    }
    loss = sum(parts.values()) / len(parts)
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def x2_loss(model: Floor, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean L1 of x2 over both kinds (x1 and x4 have no say: nothing that makes them trains)."""
    lr = torch.cat([batch["x4"]["lr"], batch["x2"]["lr"]])
    loss = F.l1_loss(model(lr)[1], torch.cat([batch["x4"]["t2"], batch["x2"]["t2"]]))
    return loss, {"x2": float(loss.detach())}


def restore_loss(
    model: Floor, batch: dict[str, dict[str, torch.Tensor]], relative_floor: float = RELATIVE_FLOOR
) -> tuple[torch.Tensor, dict[str, float]]:
    """x1's L1 per pair over its input's L1 (+ relative_floor levels), weights normalised to mean 1;
    reports the plain mean L1 of x1 (comparable with floor_loss's)."""
    lr = torch.cat([batch["x4"]["lr"], batch["x2"]["lr"]])  # B 3 T T
    t1 = torch.cat([batch["x4"]["t1"], batch["x2"]["t1"]])
    err_B = (model.restore(lr) - t1).abs().mean(dim=(1, 2, 3))
    weight_B = 1.0 / ((lr - t1).abs().mean(dim=(1, 2, 3)) + relative_floor / 255)
    loss = (err_B * weight_B).sum() / weight_B.sum()
    return loss, {"x1": float(err_B.detach().mean())}


def quick_eval(model: Floor, dataset: str) -> dict[str, float]:
    """PSNR-Y on one dev set (whole images through the tiled path), for the curves."""
    from hvar.eval_sr import evaluate, x1_ladder

    ev = evaluate(model.eval(), (dataset,), (2, 4), ("bicubic", "realistic"), progress=False)
    ladder = x1_ladder(model, dataset, QUICK_LADDER)
    model.train()
    out = {f"x1_{k}": v for k, v in ladder.items()}
    for r in ev["results"]:
        tag = f"{r['degradation'][:4]}_x{r['scale']}"
        out[f"psnr_{tag}"] = r["sr"]["psnr"]
        out[f"psnr_{tag}_x1"] = r["x1"]["psnr"]
        out[f"bicubic_{tag}"] = r["bicubic"]["psnr"]
    return out


def draw_curves(rows: list[dict], axes) -> None:
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "psnr_bicu_x4" in r]
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss (L1)")
    axes[0].set_yscale("log")
    for key, label in (("bicu_x4", "bicubic LR x4"), ("bicu_x2", "bicubic LR x2")):
        axes[1].plot([r["step"] for r in evals], [r[f"psnr_{key}"] for r in evals], label=label)
    for key, label in (
        ("real_x4", "realistic LR x4"),
        ("real_x2", "realistic LR x2"),
        ("real_x4_x1", "x1 (x4 input)"),
    ):
        axes[2].plot([r["step"] for r in evals], [r[f"psnr_{key}"] for r in evals], label=label)
    axes[1].set_ylabel("PSNR-Y (dB), eval set")
    axes[2].set_ylabel("PSNR-Y (dB), eval set")
    laddered = [r for r in evals if "x1_gain_jpeg90" in r]
    if laddered:  # runs from before the ladder have none
        twin = axes[0].twinx()
        for rung in QUICK_LADDER:
            gains = [r[f"x1_gain_{rung}"] for r in laddered]
            twin.plot([r["step"] for r in laddered], gains, "--", label=f"x1 {rung}")
        twin.axhline(0, color="grey", lw=0.5)
        twin.set_ylabel("x1 gain over its input, worst image (dB)")
        twin.legend(loc="lower left", fontsize="small")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    training.set_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True  # one input shape throughout: let cuDNN pick its fastest kernels
    out = args.out
    state = training.saved_state(out, args.resume)
    if state is None:
        model = starting_floor(args)
        flags = {"--restore-only": args.restore_only, "--x2-only": args.x2_only,
                 "--freeze-upscaler": args.freeze_upscaler}  # fmt: skip
        if any(flags.values()) and model.upscaler is None:  # before any write
            flag = next(f for f, on in flags.items() if on)
            raise SystemExit(f"{flag}: this floor has one stage, no upscaler (--preset cascade)")
        if args.damage_reader is not None:
            model.context.read.load_state_dict(load_reader(args.damage_reader))
        out.mkdir(parents=True, exist_ok=True)
        knobs = {"batch_size": args.batch_size, "lr": args.lr,
                 "freeze_upscaler": args.freeze_upscaler or args.restore_only,
                 "restore_only": args.restore_only, "x2_only": args.x2_only,
                 "mild": args.mild, "light": args.light,
                 "jpeg": args.jpeg, "jpeg_quality": list(args.jpeg_quality),
                 "texture": args.texture, "relative_floor": args.relative_floor,
                 "context_lr_mult": args.context_lr_mult,
                 "damage_reader": str(args.damage_reader) if args.damage_reader else None}  # fmt: skip
        state = {"step": 0, "seconds": 0.0, "knobs": knobs}
    else:
        model = load_floor(out)
    model.to(device).train()
    knobs = state["knobs"]  # a resumed run keeps its own
    loss_of = floor_loss
    if knobs.get("restore_only"):
        loss_of = partial(restore_loss, relative_floor=knobs.get("relative_floor", RELATIVE_FLOOR))
    if knobs.get("freeze_upscaler"):
        model.upscaler.requires_grad_(False)
    if knobs.get("x2_only"):
        loss_of = x2_loss
        model.requires_grad_(False)
        model.upscaler.x2_body.requires_grad_(True)
        model.upscaler.heads["x2"].requires_grad_(True)
    if knobs.get("damage_reader"):
        model.context.read.requires_grad_(False)  # it was taught to read the damage; the restorer's loss
        # alone would teach it to tell photos apart instead
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trained if not n.startswith("context.")]},
        {
            "params": [p for n, p in trained if n.startswith("context.")],
            "lr_mult": knobs.get("context_lr_mult", 1.0),
        },
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=BETAS, weight_decay=0.0)
    if args.resume:
        training.load_optimizer_state(opt, out, device)
    print(
        f"{out}: step {state['step']}, batch {args.batch_size} x2, lr {args.lr}, device {device}", flush=True
    )
    pairs = Pairs(args.pairs)
    rng = np.random.default_rng([args.seed, state["step"]])  # a resumed run draws new batches
    metrics = training.Metrics(out)
    budget = training.Budget(args.steps, args.minutes, state["seconds"])  # --steps 0: no training at all

    def save() -> None:
        save_floor(model, out)
        training.save_training_state(out, opt, state)
        training.save_curves(out, draw_curves)

    finished = budget.done(state["step"])  # before the first evaluation: a run that may train trains
    evaluate = partial(quick_eval, model, args.eval_set)
    if state["step"] == 0:
        training.log_evaluation(0, evaluate, metrics)

    while not finished:
        step = state["step"]
        training.set_learning_rate(opt, training.learning_rate(step, args.lr, WARMUP, budget.progress(step)))
        drawn = pairs.batch(rng, args.batch_size)
        with_defects(drawn, rng, knobs.get("mild", 0.0), knobs.get("light", 0.0), knobs.get("jpeg", 0.0),
                     tuple(knobs.get("jpeg_quality", JPEG_QUALITY)), knobs.get("texture", 0.0))  # fmt: skip
        batch = to_tensors(drawn, int(rng.integers(8)), device)
        loss, parts = loss_of(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state |= {"step": step + 1, "seconds": budget.elapsed()}
        finished = budget.done(state["step"])
        if state["step"] % 50 == 0:
            row = {"step": state["step"], "loss": float(loss.detach()), **parts,
                   "lr": opt.param_groups[0]["lr"], "seconds": round(state["seconds"], 1)}  # fmt: skip
            metrics.write(row)
        if state["step"] % args.eval_every == 0 or finished:
            training.log_evaluation(state["step"], evaluate, metrics, state["seconds"])
            training.periodic(state["step"], save)
    metrics.close()
    training.periodic(state["step"], save)


if __name__ == "__main__":
    main()
