"""Train the next-scale transformer on random crops of ../shared/datasets/train, with a frozen HIT.

    python -m hvar.train_transformer --preset base --tokenizer runs/tok-base-hit --out runs/hvar-base \\
        --minutes 60
    python -m hvar.train_transformer --preset base --tokenizer runs/tok-base-hit --out runs/hvar-base-nodpo \\
        --dpo off --minutes 60                                  # the DPO ablation
    python -m hvar.train_transformer --out runs/hvar-base --resume --minutes 120   # budgets are totals
    python -m hvar.train_transformer --init runs/hvar-base --tokenizer runs/tok-base-dg \
        --out runs/hvar-base-dg --lr-mode mixed --minutes 40   # go on from a run, with a new tokenizer
    python -m hvar.train_transformer --init checkpoints/hvar-base --tokenizer checkpoints/tok-base-hit-lrg \
        --floor checkpoints/floor-cascade-mild --out runs/hvar-floor --minutes 40   # on the floor's x1
    torchrun --nproc_per_node 8 -m hvar.train_transformer ...  # data parallel (NCCL on GPUs, gloo on CPU)

Each step takes HR crops of side 4T, makes their LR on the fly (`--lr-mode bicubic`: MATLAB bicubic;
`realistic`: the Real-ESRGAN-style recipe of `hvar.degrade`; `mixed`: half of each batch each way),
tokenizes the HR crop (z_HR) and the LR upsampled bilinearly to the HR size (z_LR, the DPO's rejected
sequence), and minimises
CE(z_HR) + lambda * softplus(-beta * (l(z_HR) - l(z_LR))) (`hvar.dpo`). --batch-size is the global
batch: under torchrun each process takes batch_size / world_size of it.

With `--floor`, the transformer learns on the restoration stage's output instead of the raw LR, as the
detail stage (`hvar.detail`) runs it: pairs come from the pair cache (`hvar.pairs`, half bicubic, half
degraded LR), the frozen floor cleans the whole 48 px LR, and the centre tile of its x4 (`--condition
x4`, the default; or of its x1, upsampled) is the transformer's condition, having seen real context; the
HR centre tile gives z_HR, and z_LR is the tokens of that x4 (the floor's own tokens: what it already
knows is the sequence the DPO rejects).

A run folder holds model.safetensors + config.json + tokenizer/ (the model, see `hvar.sr`), optim.pt +
state.json (to resume; reference.safetensors with --dpo reference), metrics.jsonl, curves.png, and at
the end report.json / report.md (SR on Set5 / Set14, see `hvar.eval_sr`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from hvar import training
from hvar.config import TRANSFORMER_PRESETS, HVARConfig
from hvar.data import PAIR_MODES, lr_batches
from hvar.ddp import setup_distributed, wrap_ddp
from hvar.detail import centre_tiles
from hvar.dpo import loss_on_batch
from hvar.floor import Floor, load_floor
from hvar.pairs import Pairs, unusable
from hvar.sr import HVAR, load_hvar, save_hvar
from hvar.tokenizer import load_hit
from hvar.train_floor import to_tensors
from hvar.transformer import NextScaleTransformer

# Knobs per preset (nanoGPT style: all in one place). batch_size is global (all processes together).
TRAIN_DEFAULTS = {
    "tiny": dict(batch_size=8, lr=1e-3, warmup=20, log_every=5),
    "base": dict(batch_size=8, lr=4e-4, warmup=100, log_every=10),
    "small": dict(batch_size=64, lr=2e-4, warmup=500, log_every=20),
    "paper": dict(batch_size=256, lr=1e-4, warmup=1000, log_every=20),
}
BETAS, WEIGHT_DECAY, GRAD_CLIP = (0.9, 0.95), 0.05, 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="base", choices=sorted(TRAIN_DEFAULTS), help="transformer size")
    ap.add_argument("--tokenizer", help="trained tokenizer run folder (model.safetensors + config.json)")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps in total (0 = no limit)")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time in total")
    ap.add_argument("--lr-mode", default="bicubic", choices=PAIR_MODES, help="how LR crops are made")
    ap.add_argument("--dpo", choices=("off", "simple", "reference"), default=None, help="default: preset's")
    ap.add_argument("--dpo-beta", type=float, default=None)
    ap.add_argument("--dpo-lambda", type=float, default=None)
    ap.add_argument("--ref", help="--dpo reference: transformer run to use as the frozen reference "
                    "(default: a frozen copy of the model as it starts)")  # fmt: skip
    ap.add_argument("--init", help="start from this transformer run's weights and transformer config "
                    "(with the --tokenizer given, e.g. one whose decoder was retrained)")  # fmt: skip
    ap.add_argument("--floor", help="train on this floor's output (--condition) for the pair cache's LR")
    ap.add_argument("--pairs", default=".data/pairs", help="--floor: the pair cache (`hvar.pairs`)")
    ap.add_argument("--condition", choices=("x1", "x4"), default="x4", help="--floor: which of its outputs")
    ap.add_argument(
        "--hint", action="store_true", help="a new run: the condition image's own tokens as an input"
    )
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per process (0 = all cores)")
    ap.add_argument("--batch-size", type=int, default=None, help="global batch")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0, help="checkpoint period")
    ap.add_argument("--eval-sets", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--no-eval", action="store_true", help="skip the final SR evaluation")
    args = ap.parse_args(argv)
    if not args.steps and not args.minutes:
        ap.error("give --steps and/or --minutes")
    if not args.resume and not args.tokenizer:
        ap.error("a new run needs --tokenizer")
    if args.init and not Path(args.init, "model.safetensors").exists():
        ap.error(f"--init: no model.safetensors in {args.init}")
    if args.floor and (why := unusable(Path(args.pairs))):
        ap.error(f"--pairs {args.pairs}: {why} (build it: python -m hvar.pairs --out {args.pairs})")
    return args


def floor_batches(
    pairs: Pairs,
    floor: Floor,
    tile: int,
    seed: int,
    batch: int,
    device: torch.device | str = "cpu",
    condition: str = "x4",
) -> Iterator:
    """Endless (HR centre tile, the floor's x1 or x4 of it) batches in [-1, 1] on `device`, from the pair
    cache."""
    rng = np.random.default_rng(seed)
    floor = floor.to(device).eval().requires_grad_(False)
    while True:
        drawn = to_tensors({"x4": pairs.batch(rng, batch)["x4"]}, int(rng.integers(8)), device)["x4"]
        with torch.no_grad():
            outs = [x.clamp(0, 1) * 2 - 1 for x in floor(drawn["lr"])]
        hr, guides, _ = centre_tiles(drawn, outs, tile)
        yield hr, guides[0] if condition == "x1" else guides[2]


def make_optimizer(transformer: NextScaleTransformer, lr: float) -> torch.optim.AdamW:
    """Weight decay on matrices only; never on embeddings, position/start tables, norms or biases."""

    def decays(name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim == 2 and "embed" not in name and not name.endswith("_1D")

    return training.adamw(transformer.named_parameters(), lr, BETAS, WEIGHT_DECAY, decays)


# ---- files -------------------------------------------------------------------------------------------------
def save_checkpoint(out: Path, hvar: HVAR, opt, state: dict) -> None:
    save_hvar(hvar, out)
    training.save_training_state(out, opt, state)


def draw_curves(rows: list[dict], axes) -> None:
    steps = [r["step"] for r in rows]
    for key in ("loss", "ce", "dpo"):
        if key in rows[-1]:
            axes[0].plot(steps, [r.get(key, math.nan) for r in rows], label=key)
    axes[0].set_title("losses")
    for key in sorted(k for k in rows[-1] if k.startswith("ce_seg")):
        axes[1].plot(steps, [r.get(key, math.nan) for r in rows], label=key)
    axes[1].set_title("CE per segment (x1, x2, x4 tokens)")
    for key in sorted(k for k in rows[-1] if k.startswith("acc_seg")):
        axes[2].plot(steps, [r.get(key, math.nan) for r in rows], label=key)
    if "margin" in rows[-1]:
        axes[2].plot(steps, [r.get("margin", math.nan) for r in rows], label="l(z_HR) - l(z_LR)")
    axes[2].set_title("token accuracy per segment, DPO margin")


def build_run(args, knobs: dict) -> tuple[HVAR, dict]:
    """A new model from a tokenizer run and the preset's transformer (or --init's), with the command
    line's DPO knobs."""
    tokenizer, tok_cfg = load_hit(args.tokenizer)
    start = load_hvar(args.init) if args.init else None
    if start is not None:
        shape = ("tile", "vocab_size", "cvae", "patch_nums")
        if any(getattr(start.cfg.tokenizer, k) != getattr(tok_cfg.tokenizer, k) for k in shape):
            sys.exit(f"--init {args.init}: its tokenizer differs from --tokenizer in one of {shape}")
        same = start.tokenizer.same_tokens_as(tokenizer)
        print(f"--init {args.init}: " + ("the same tokens" if same else "new tokens: fine-tuning onto them"))
    name = start.cfg.name if start is not None else args.preset
    tcfg = start.cfg.transformer if start is not None else TRANSFORMER_PRESETS[args.preset]
    dpo = {"dpo_mode": args.dpo, "dpo_beta": args.dpo_beta, "dpo_lambda": args.dpo_lambda}
    tcfg = dataclasses.replace(tcfg, **{k: v for k, v in dpo.items() if v is not None})
    tcfg = dataclasses.replace(tcfg, condition=args.condition if args.floor else "lr", hint=args.hint)
    cfg = HVARConfig(name=name, tokenizer=tok_cfg.tokenizer, transformer=tcfg)
    torch.manual_seed(args.seed)
    hvar = HVAR(cfg, tokenizer)
    if start is not None:  # a hint's parts start at zero where --init had none
        missing, unexpected = hvar.transformer.load_state_dict(start.transformer.state_dict(), strict=False)
        if unexpected or set(missing) - {"hint_embed.weight", "hint_gain_K"}:
            sys.exit(f"--init {args.init}: the transformer does not fit ({missing=}, {unexpected=})")
    state = dict(step=0, elapsed_s=0.0, seed=args.seed, preset=name, knobs=knobs,
                 tokenizer_run=str(args.tokenizer), lr_mode=args.lr_mode, init=args.init,
                 floor=args.floor, pairs=args.pairs)  # fmt: skip
    return hvar, state


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rank, world, device = setup_distributed()
    training.set_threads(args.threads, world)
    out, main_proc = Path(args.out), rank == 0
    knobs = training.knobs_from(TRAIN_DEFAULTS[args.preset], args)

    saved = training.saved_state(out, args.resume)
    if saved:
        hvar = load_hvar(out)
        state, knobs = saved, training.knobs_from(saved["knobs"], args)
    else:
        hvar, state = build_run(args, knobs)
    if knobs["batch_size"] % world:
        sys.exit(f"--batch-size {knobs['batch_size']} must be a multiple of the {world} processes")
    cfg, tok_cfg = hvar.cfg, hvar.cfg.tokenizer
    hvar.to(device).train()
    opt = make_optimizer(hvar.transformer, knobs["lr"])
    if saved:
        training.load_optimizer_state(opt, out, device)

    ref = None
    if cfg.transformer.dpo_mode == "reference":
        ref = copy.deepcopy(hvar.transformer).eval().requires_grad_(False)
        ref_file = out / "reference.safetensors"
        src = ref_file if ref_file.exists() else (Path(args.ref) / "model.safetensors" if args.ref else None)
        if src is not None:
            ref.load_state_dict(load_file(src, device=str(device)))
        if main_proc and not ref_file.exists():
            out.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous().cpu() for k, v in ref.state_dict().items()}, ref_file)
    model = wrap_ddp(hvar.transformer, device, world)

    n_params = sum(p.numel() for p in hvar.transformer.parameters())
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        print(
            f"{cfg.name}: transformer {n_params / 1e6:.2f}M params, L={tok_cfg.num_tokens} "
            f"(+{hvar.transformer.num_cond} condition tokens), {cfg.transformer}, "
            f"lr_mode={state['lr_mode']}, floor={state.get('floor')}, knobs={knobs}, processes={world}, "
            f"device={device}",
            flush=True,
        )

    step = state["step"]
    seed = training.data_seed(args.seed, step, rank)
    torch.manual_seed(seed)
    local_batch = knobs["batch_size"] // world
    if state.get("floor"):
        floor = load_floor(state["floor"])
        pairs, condition = Pairs(Path(state["pairs"])), cfg.transformer.condition
        data = floor_batches(pairs, floor, tok_cfg.tile, seed, local_batch, device, condition)
    else:
        data = lr_batches(tok_cfg.hr_tile, state["lr_mode"], seed, local_batch)

    budget = training.Budget(args.steps or math.inf, args.minutes, state["elapsed_s"])
    bar = training.progress_bar(step, budget.steps, enabled=main_proc)
    metrics, means = training.Metrics(out, enabled=main_proc), training.Means()
    checkpoint_due = training.Every(args.ckpt_minutes)
    if step == 0 and main_proc:
        save_checkpoint(out, hvar, opt, state)

    def write_record(lr: float) -> None:
        """Means over the steps since the last record (rank 0's shard of the batch)."""
        rec = {"step": step, "elapsed_s": round(budget.elapsed(), 1), "lr": lr} | means.pop()
        metrics.write(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", ce=f"{rec['ce']:.3f}")

    def stop_now() -> bool:
        """Every rank must stop at the same step: rank 0's clock decides."""
        stop = torch.tensor([float(budget.done(step))])
        if world > 1:
            dist.broadcast(stop, 0)
        return bool(stop.item())

    while not stop_now():
        lr = training.learning_rate(step, knobs["lr"], knobs["warmup"])
        training.set_learning_rate(opt, lr)
        hr, lr_img = (t.to(device, non_blocking=True) for t in next(data))
        loss, logs = loss_on_batch(model, hvar, hr, lr_img, ref)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(hvar.transformer.parameters(), GRAD_CLIP))
        opt.step()
        step += 1
        bar.update(1)
        means.add(logs)
        if main_proc and step % knobs["log_every"] == 0:
            write_record(lr)
        if main_proc and checkpoint_due.due():
            now = state | dict(step=step, elapsed_s=budget.elapsed())
            training.periodic(
                step,
                partial(save_checkpoint, out, hvar, opt, now),
                partial(training.save_curves, out, draw_curves),
            )
    bar.close()
    state |= dict(step=step, elapsed_s=budget.elapsed())
    if main_proc:
        if means.count:
            write_record(lr)
        metrics.close()
        save_checkpoint(out, hvar, opt, state)
        training.save_curves(out, draw_curves)
        print(f"stopped at step {step} after {state['elapsed_s'] / 60:.1f} min", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if args.no_eval or not main_proc:
        return

    from hvar.eval_sr import evaluate, report_markdown

    hvar.eval()
    tcfg = cfg.transformer
    t_eval = time.time()
    ev = evaluate(hvar, tuple(args.eval_sets), crops_dir=out / "crops")
    info = dict(
        preset=cfg.name,
        tokenizer_run=state["tokenizer_run"],
        init=state.get("init"),
        lr_mode=state["lr_mode"],
        floor=state.get("floor"),
        dpo=f"{tcfg.dpo_mode} (beta {tcfg.dpo_beta}, lambda {tcfg.dpo_lambda})",
        transformer_params_M=round(n_params / 1e6, 3),
        step=step,
        train_minutes=round(state["elapsed_s"] / 60, 1),
        batch_size=knobs["batch_size"],
        processes=world,
    )
    report = dict(
        info, config=cfg.to_dict(), knobs=knobs, eval=ev, eval_seconds=round(time.time() - t_eval, 1)
    )
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False, default=str))
    (out / "report.md").write_text(report_markdown(f"H-VAR run {out.name}", info, ev))
    print((out / "report.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
