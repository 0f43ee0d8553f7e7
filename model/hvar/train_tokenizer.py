"""Train HIT (or the plain VAR tokenizer) on random crops of ../shared/datasets/train.

    python -m hvar.train_tokenizer --preset base --out runs/tok-base --minutes 60
    python -m hvar.train_tokenizer --preset base --out runs/tok-base-plain --plain --steps 2000
    python -m hvar.train_tokenizer --out runs/tok-base --resume --minutes 120   # budgets are totals
    python -m hvar.train_tokenizer --init runs/tok-base --out runs/tok-base-dg --guide mixed \
        --freeze-encoder --minutes 40     # teach the decoder to trust its tokens over a degraded LR

An LR-guided decoder gets the MATLAB-bicubic LR of each crop as its guide by default. `--guide mixed`
makes half of every batch's guides by the realistic recipe (blur, noise, JPEG), while the targets stay
the clean HR pyramid: whatever the degraded guide lost must then come from the tokens, which is what
makes the tokens (and so the transformer that predicts them) matter. `--init` starts from a trained
tokenizer; `--freeze-encoder` then trains the decoder only, so every image keeps exactly the tokens it
had and transformers trained on the --init tokenizer stay valid. `--guide-dropout p` replaces the guide
of a fraction p of the samples by flat grey, so the encoder and codebook must carry the image by
themselves there.

A run folder holds: model.safetensors + config.json (the model), optim.pt + state.json (to resume),
metrics.jsonl, curves.png, and at the end report.json / report.md (Set5 / Set14 reconstruction PSNR-Y
per segment and codebook usage, see `hvar.eval_tokenizer`). Training stops at --steps or --minutes,
whichever comes first; both count from the start of the run, across resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from functools import partial
from pathlib import Path

import torch

from hvar import training
from hvar.config import HVARConfig, get_config
from hvar.data import PAIR_MODES, RandomCrops, batches, lr_batches
from hvar.eval_tokenizer import evaluate, report_markdown
from hvar.tokenizer import HIT, load_hit, load_lpips, save_hit, tokenizer_loss

# Knobs per preset (nanoGPT style: all in one place).
TRAIN_DEFAULTS = {
    "tiny": dict(batch_size=8, lr=1e-3, warmup=20, reinit_every=20, log_every=5),
    "base": dict(batch_size=8, lr=4e-4, warmup=100, reinit_every=100, log_every=10),
    "small": dict(batch_size=32, lr=2e-4, warmup=500, reinit_every=200, log_every=20),
    "paper": dict(batch_size=32, lr=1e-4, warmup=1000, reinit_every=200, log_every=20),
}
BETAS, WEIGHT_DECAY, GRAD_CLIP = (0.9, 0.95), 1e-4, 1.0
NO_REINIT_FRACTION = 0.9  # stop re-seeding dead codes near the end so the final codebook is trained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="base", choices=sorted(TRAIN_DEFAULTS))
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps in total (0 = no limit)")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time in total")
    ap.add_argument("--hierarchical", action=argparse.BooleanOptionalAction, default=None,
                    help="HIT (default); with --init: the init's weights under this quantizer")  # fmt: skip
    ap.add_argument("--plain", dest="hierarchical", action="store_false", help="plain VAR quantizer")
    ap.add_argument("--lr-guided", action=argparse.BooleanOptionalAction, default=None,
                    help="decoder also sees the LR image (default: the preset's choice)")  # fmt: skip
    ap.add_argument("--guide", choices=PAIR_MODES, default="bicubic",
                    help="how an LR-guided decoder's LR guide is made (targets stay clean)")  # fmt: skip
    ap.add_argument("--guide-dropout", type=float, default=0.0,
                    help="fraction of samples whose guide is replaced by flat grey: those must be rebuilt "
                    "from the tokens alone")  # fmt: skip
    ap.add_argument("--init", help="start a new run from this trained tokenizer's weights and config")
    ap.add_argument("--freeze-encoder", action="store_true",
                    help="train the decoder only: encoder, codebook, so every token, stay fixed")  # fmt: skip
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0, help="checkpoint period")
    ap.add_argument("--no-eval", action="store_true", help="skip the final Set5/Set14 evaluation")
    args = ap.parse_args(argv)
    if not args.steps and not args.minutes:
        ap.error("give --steps and/or --minutes")
    if args.init and not Path(args.init, "model.safetensors").exists():
        ap.error(f"--init: no model.safetensors in {args.init}")
    if not 0.0 <= args.guide_dropout < 1.0:
        ap.error("--guide-dropout is a fraction in [0, 1)")
    if args.freeze_encoder and not (args.init or args.resume):
        ap.error("--freeze-encoder needs --init: a random encoder's tokens are not worth keeping")
    if args.freeze_encoder and args.hierarchical is not None and args.init:
        ap.error("--freeze-encoder keeps the init's tokens; --plain / --hierarchical would change them")
    return args


def drop_guides(lr_B3TT: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Each sample's guide replaced by flat mid-grey (0 in [-1, 1]) with probability p."""
    keep_B = torch.rand(lr_B3TT.shape[0], generator=gen) >= p
    return lr_B3TT * keep_B.view(-1, 1, 1, 1)


def switch_quantizer(model: HIT, cfg: HVARConfig, hierarchical: bool) -> tuple[HIT, HVARConfig]:
    """The same weights under the other quantizer (HIT <-> plain VAR): both have the same parameters,
    only which latent each segment quantizes differs, so the plain ablation can start where HIT is."""
    tcfg = dataclasses.replace(cfg.tokenizer, hierarchical=hierarchical)
    switched = HIT(tcfg)
    switched.load_state_dict(model.state_dict())
    return switched, dataclasses.replace(cfg, tokenizer=tcfg)


def make_optimizer(model: HIT, lr: float) -> torch.optim.AdamW:
    """Weight decay on conv/linear weights only; never on the codebook, norms or biases."""

    def decays(name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2 and "embedding" not in name

    return training.adamw(model.named_parameters(), lr, BETAS, WEIGHT_DECAY, decays)


def save_checkpoint(out: Path, model: HIT, cfg: HVARConfig, opt, state: dict) -> None:
    save_hit(model, cfg, out)
    training.save_training_state(out, opt, state)


def draw_curves(rows: list[dict], axes) -> None:
    train = [r for r in rows if "loss" in r]
    steps = [r["step"] for r in train]
    for key in ("loss", "rec", "vq"):
        axes[0].plot(steps, [r[key] for r in train], label=key)
    axes[0].set_yscale("log")
    axes[0].set_title("losses")
    for key in sorted(k for k in train[-1] if k.startswith("l1_seg")):
        axes[1].plot(steps, [r.get(key, math.nan) for r in train], label=key)
    axes[1].set_yscale("log")
    axes[1].set_title("L1 per decoded segment")
    use = [r for r in rows if "usage" in r]
    axes[2].plot([r["step"] for r in use], [100 * r["usage"] for r in use], label="codebook usage %")
    axes[2].plot([r["step"] for r in use], [r["reinit"] for r in use], label="codes re-seeded")
    axes[2].set_title("codebook (per window)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    training.set_threads(args.threads)
    out = Path(args.out)

    saved = training.saved_state(out, args.resume)
    if saved:
        model, cfg = load_hit(out)
        state, knobs = saved, training.knobs_from(saved["knobs"], args)
    else:
        if args.init:  # the --init run's preset and architecture; --lr-guided does not apply
            model, cfg = load_hit(args.init)
            if args.hierarchical is not None and args.hierarchical != cfg.tokenizer.hierarchical:
                model, cfg = switch_quantizer(model, cfg, args.hierarchical)
        else:
            guided = {} if args.lr_guided is None else {"lr_guided_decoder": args.lr_guided}
            hierarchical = True if args.hierarchical is None else args.hierarchical
            cfg = get_config(args.preset, hierarchical=hierarchical, **guided)
            torch.manual_seed(args.seed)
            model = HIT(cfg.tokenizer)
        knobs = training.knobs_from(TRAIN_DEFAULTS[cfg.name], args)
        state = dict(step=0, elapsed_s=0.0, seed=args.seed, preset=cfg.name, knobs=knobs, guide=args.guide,
                     guide_dropout=args.guide_dropout, init=args.init,
                     freeze_encoder=args.freeze_encoder)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
    guide, frozen = state.get("guide", "bicubic"), state.get("freeze_encoder", False)
    guide_dropout = state.get("guide_dropout", 0.0)
    if frozen:
        model.freeze_tokens()
    opt = make_optimizer(model, knobs["lr"])
    tcfg = cfg.tokenizer
    n_params = sum(p.numel() for p in model.parameters())
    # One GPU when there is one (float32 with TF32 matmuls: the nearest-code search needs the precision).
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model.to(device)
    if args.resume:
        training.load_optimizer_state(opt, out, device)
    print(
        f"{cfg.name}: {n_params / 1e6:.2f}M params, segments {tcfg.segments}, L={tcfg.num_tokens}, "
        f"hierarchical={tcfg.hierarchical}, lr_guided={tcfg.lr_guided_decoder}, "
        f"guide={guide} (dropout {guide_dropout}), frozen encoder={frozen}, init={state.get('init')}, "
        f"knobs={knobs}, device={device}",
        flush=True,
    )

    step = state["step"]
    seed = training.data_seed(args.seed, step)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if tcfg.lr_guided_decoder:
        data = lr_batches(tcfg.hr_tile, guide, seed, knobs["batch_size"])
    else:
        data = batches(RandomCrops(tcfg.hr_tile, seed=seed), knobs["batch_size"])
    lpips = load_lpips(tcfg.lpips_path)

    budget = training.Budget(args.steps or math.inf, args.minutes, state["elapsed_s"])
    bar = training.progress_bar(step, budget.steps)
    metrics, means = training.Metrics(out), training.Means()
    window_hits = torch.zeros(tcfg.num_scales, tcfg.vocab_size)
    checkpoint_due = training.Every(args.ckpt_minutes)
    model.train()
    if step == 0:  # a first checkpoint now also loads every lazily imported module while the env is sane
        save_checkpoint(out, model, cfg, opt, state)

    while not budget.done(step):
        lr = training.learning_rate(step, knobs["lr"], knobs["warmup"])
        training.set_learning_rate(opt, lr)
        batch = next(data)
        img, lr_img = batch if isinstance(batch, tuple) else (batch, None)
        img = img.to(device, non_blocking=True)
        if lr_img is not None and guide_dropout > 0:
            lr_img = drop_guides(lr_img, guide_dropout, gen)
        lr_img = None if lr_img is None else lr_img.to(device, non_blocking=True)
        bypass_B = (torch.rand(img.shape[0], generator=gen) < tcfg.bypass_prob).to(device)
        res = model(img, lr_img, bypass_B)
        loss, logs = tokenizer_loss(res, tcfg, lpips)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        step += 1
        bar.update(1)
        window_hits += res.hits_SV.float().cpu()
        means.add(logs)

        if step % knobs["log_every"] == 0:
            rec = {"step": step, "elapsed_s": round(budget.elapsed(), 1), "lr": lr} | means.pop()
            metrics.write(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", rec=f"{rec['rec']:.4f}", vq=f"{rec['vq']:.4f}")
        if step % knobs["reinit_every"] == 0:
            used_SV = window_hits > 0
            late = budget.progress(step) >= NO_REINIT_FRACTION or frozen  # frozen: never re-seeded
            n = 0 if late else model.quantizer.reinit_dead_codes(window_hits.sum(0), res.rest_NC, gen)
            rec = {"step": step, "usage": float(used_SV.any(0).float().mean()), "reinit": n}
            rec["usage_per_scale"] = [round(float(u), 3) for u in used_SV.float().mean(1)]
            metrics.write(rec)
            window_hits.zero_()
        if checkpoint_due.due():
            now = state | dict(step=step, elapsed_s=budget.elapsed())
            training.periodic(
                step,
                partial(save_checkpoint, out, model, cfg, opt, now),
                partial(training.save_curves, out, draw_curves),
            )
    bar.close()
    metrics.close()
    state |= dict(step=step, elapsed_s=budget.elapsed())
    save_checkpoint(out, model, cfg, opt, state)
    training.save_curves(out, draw_curves)
    print(f"stopped at step {step} after {state['elapsed_s'] / 60:.1f} min", flush=True)
    if args.no_eval:
        return

    t_eval = time.time()
    model.cpu()
    ev = evaluate(model)
    if tcfg.lr_guided_decoder:  # what the tokens add: degraded guides, and the LR image's own tokens
        ev["realistic_guide"] = evaluate(model, guide="realistic")["psnr_y"]
        ev["lr_tokens_realistic_guide"] = evaluate(model, guide="realistic", tokens="lr")["psnr_y"]
    info = dict(
        preset=cfg.name,
        mode="HIT" if tcfg.hierarchical else "plain VAR",
        lr_guided_decoder=tcfg.lr_guided_decoder,
        guide=guide,
        guide_dropout=guide_dropout,
        init=state.get("init"),
        freeze_encoder=frozen,
        params_M=round(n_params / 1e6, 3),
        step=step,
        train_minutes=round(state["elapsed_s"] / 60, 1),
        batch_size=knobs["batch_size"],
        tokens_per_segment=list(tcfg.tokens_per_segment),
        L=tcfg.num_tokens,
    )
    report = dict(
        info, config=cfg.to_dict(), knobs=knobs, eval=ev, eval_seconds=round(time.time() - t_eval, 1)
    )
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(report_markdown(f"Tokenizer run {out.name}", info, ev))
    print((out / "report.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
