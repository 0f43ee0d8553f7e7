"""Train the detail stage's decoder (`hvar.detail`) on the pair cache, the floor and the tokens frozen.

    python -m hvar.train_detail --tokenizer checkpoints/tok-base-hit-lrg \\
        --floor checkpoints/floor-cascade-mild --out runs/detail --minutes 40 --threads 2
    python -m hvar.train_detail --out runs/detail --resume --minutes 80     # budgets are totals
    python -m hvar.train_detail --init checkpoints/detail-base --out runs/detail-gan \\
        --adversarial 2 --critic-warmup 300 --floor-tokens 0.5 --lowpass 2 --niqe --minutes 60   # a GPU's job

Each step draws x4 pairs (`hvar.pairs`: LR side 48, half bicubic, half degraded), runs the frozen floor
on the whole 48 px LR and keeps the centre tile (LR side T, so the floor's outputs there saw real
context, not the crop's zero padding), tokenizes the HR centre tile, and trains the decoder to turn the
tokens and the floor's outputs into the targets: x1 = the clean LR, x2 = the HR at half size, x4 = the
HR. Loss: L1 + the image-gradient L1 (`tokenizer.image_grad_l1`) per output, averaged.

`--spectrum W` adds W times the L1 between the amplitude spectra of the decoded x4's 32 px patches and
the HR's (`patch_spectrum_l1`): the phase is left free, so the decoder is asked for the HR's amount of
fine detail where it cannot know its exact place, instead of the flat mean L1 asks for.
`--adversarial W` adds a patch critic (`hvar.discriminator`: hinge loss, its weight W times VQGAN's
adaptive balance), trained beside the decoder: L1 alone makes the decoder draw the mean of what the
tokens allow, a soft picture. The critic sees what x4 adds to the floor's x4 (the HR's difference from
it against the decoded x4's, times RESIDUAL_GAIN), not the images: the two images differ by a few grey
levels of texture under the same content, which a critic on the images could not tell apart in 60
steps, while on the residual it tells 78% of the patches apart in 10 (checkpoints/detail-texture).
`--floor-tokens P` decodes a fraction P of the tiles from the floor's own x4 tokens instead of the HR
tile's, towards the same HR target: the tokens a transformer that knows no better gives, from which only
a loss that asks for detail (the critic's, the spectrum's) can make the decoder draw any.
`--lowpass S` frees those tiles' x4 from L1's pull towards the mean where the LR is degraded: their x4 L1
compares the two images blurred by a Gaussian of S HR px, so the reconstruction asks for the content
and the critic for the detail on top (frequency separation). Clean LR keeps the full L1.
`--equivariance W` adds, on the tiles decoded from the floor's own tokens, W times the L1 between the
x4 decoded from the tokens of the floor's x4 and that x4, both turned by a random one of the square's 7
other symmetries, and the x4 decoded unturned, turned the same way (`equivariance_l1`). The pictures
have no preferred direction (batches are turned at random), so detail that follows the content costs
nothing, while a pattern fixed in the decoder's own frame, such as the vertical streaks the critic let
through on the CPU (`streak_probe.py --orientation`), costs its size. Those tiles are where the decoder
is free to draw what it likes; on the HR tiles, which the full L1 pins, the term cost the HR tokens
0.5 dB in 150 CPU steps (1.4 dB when it turned the token map).

A run folder holds decoder.safetensors, tokenizer/ and floor/ (`hvar.detail`), optim.pt + state.json,
metrics.jsonl (training rows, and every --eval-every steps Set5's realistic x4 PSNR-Y, and NIQE with
--niqe, of the floor alone, with HR tokens and with the floor's own tokens, the streakiness of what the
tokens add, and clean LR's x4 PSNR-Y), curves.png; with --adversarial also discriminator.safetensors and
discriminator-optim.pt; with --niqe also best/, the detail folder of the check with the lowest NIQE from
the floor's own tokens at most PSNR_ALLOWANCE below the floor on realistic and on clean LR, no
streakier than STREAK_LIMIT, with HR tokens still ORACLE_MARGIN above the floor (state.json's "best"
says which).
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from hvar import training
from hvar.detail import Detail, DetailDecoder, centre_tiles, load_detail, save_detail
from hvar.discriminator import PatchDiscriminator, adaptive_weight, d_hinge, g_hinge
from hvar.eval_detail import evaluate
from hvar.floor import load_floor
from hvar.pairs import Pairs, unusable
from hvar.tokenizer import image_grad_l1, load_hit
from hvar.train_floor import dihedral, to_tensors

BETAS, WARMUP, GRAD_CLIP = (0.9, 0.99), 50, 1.0
# The critic learns at twice the decoder's rate with a short momentum (TTUR, as GANs train): at the
# decoder's own settings it rated real and decoded tiles alike for 100 steps while the balance pushed
# the decoder around at random (checkpoints/detail-texture, "critic-no-warmup").
CRITIC_LR_RATIO, CRITIC_BETAS = 2.0, (0.5, 0.99)
# The HR's difference from the floor's x4 has a standard deviation near 0.09 in [-1, 1] units: times 4
# it spans about the range the critic's first (unnormalised) convolution sees for an image.
RESIDUAL_GAIN = 4.0
MAX_LOWPASS = 8.0  # sigma in HR px: the blur's reach (3 sigma) stays inside the HR tile (128 px)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="run folder")
    ap.add_argument("--tokenizer", help="trained HIT run (its encoder, codebook and decoder body)")
    ap.add_argument("--floor", help="trained floor folder (floor.safetensors)")
    ap.add_argument("--init", help="a detail run to start from instead: its decoder, tokenizer and floor")
    ap.add_argument(
        "--adversarial",
        type=float,
        default=0.0,
        help="weight of the patch critic's term on x4, times the adaptive balance (0: none)",
    )
    ap.add_argument(
        "--spectrum",
        type=float,
        default=0.0,
        help="weight of the x4 patches' amplitude-spectrum L1 (0: none)",
    )
    ap.add_argument(
        "--critic-warmup",
        type=int,
        default=200,
        help="steps at the start in which only the critic learns from the adversarial term",
    )
    ap.add_argument(
        "--floor-tokens",
        type=float,
        default=0.0,
        help="fraction of tiles decoded from the floor's own x4 tokens instead of the HR's",
    )
    ap.add_argument(
        "--lowpass",
        type=float,
        default=0.0,
        help="on tiles decoded from the floor's own tokens with a degraded LR, x4's L1 compares the images "
        f"blurred by a Gaussian of this sigma in HR px, at most {MAX_LOWPASS} (0: the full images)",
    )
    ap.add_argument(
        "--equivariance",
        type=float,
        default=0.0,
        help="weight of the L1 between x4 decoded from turned inputs and x4 turned (0: none)",
    )
    ap.add_argument(
        "--niqe",
        action="store_true",
        help="the Set5 checks also score NIQE (shared/metrics), and the run keeps its best check in best/",
    )
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs"), help="pair cache (`hvar.pairs`)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--steps", type=int, default=100000, help="stop after this many steps in total")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much training in total")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-set", default="Set5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if not args.resume and not args.init and not (args.tokenizer and args.floor):
        ap.error("a new run needs --init, or --tokenizer and --floor")
    if args.init and (args.tokenizer or args.floor):
        ap.error("--init takes the tokenizer and the floor from that run: leave out --tokenizer and --floor")
    if not 0 <= args.floor_tokens <= 1:
        ap.error("--floor-tokens is a fraction in [0, 1]")
    if min(args.spectrum, args.adversarial, args.critic_warmup, args.lowpass, args.equivariance) < 0:
        ap.error("the weights, --critic-warmup and --lowpass cannot be negative")
    if args.lowpass > MAX_LOWPASS:
        ap.error(f"--lowpass is at most {MAX_LOWPASS} HR px: a wider blur reaches past the tile")
    if args.lowpass > 0 and args.floor_tokens == 0 and not args.resume:
        ap.error("--lowpass acts on the tiles decoded from the floor's tokens: it needs --floor-tokens > 0")
    if args.equivariance > 0 and args.floor_tokens == 0 and not args.resume:
        ap.error("--equivariance acts on the tiles decoded from the floor's tokens: needs --floor-tokens > 0")
    if not args.resume and args.out.exists():
        ap.error(f"--out {args.out} exists: pass --resume to continue it, or choose a new folder")
    why = unusable(args.pairs)
    if why:
        ap.error(f"--pairs {args.pairs}: {why} (build it: python -m hvar.pairs --out {args.pairs})")
    return args


SPECTRUM_PATCH = 32  # px: a few textures' periods, small enough that a patch holds one kind of surface


def patch_spectrum_l1(x: torch.Tensor, y: torch.Tensor, patch: int = SPECTRUM_PATCH) -> torch.Tensor:
    """L1 between the amplitude spectra of the images' non-overlapping patches (B C H W, H and W
    multiples of `patch`): how much detail of each frequency, wherever it lies in the patch."""

    def amplitude(img: torch.Tensor) -> torch.Tensor:
        tiles = img.unfold(2, patch, patch).unfold(3, patch, patch)  # B C H/p W/p p p
        return torch.fft.rfft2(tiles, norm="ortho").abs()

    return F.l1_loss(amplitude(x), amplitude(y))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """B C H W blurred by a separable Gaussian of `sigma` px, mirrored at the edges."""
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = (k / k.sum()).repeat(x.shape[1], 1, 1, 1)  # C 1 1 2r+1
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])


def low_passed(x: torch.Tensor, which: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (B C H W) with the tiles marked in `which` (B bools) blurred by `gaussian_blur`."""
    return torch.where(which.view(-1, 1, 1, 1), gaussian_blur(x, sigma), x)


def equivariance_l1(model: Detail, floor_x4: torch.Tensor, x4: torch.Tensor, k: int) -> torch.Tensor:
    """L1 between x4 decoded from the tokens of the floor's x4 (B 3 4T 4T) turned by `dihedral` k, guided
    by it turned, and x4 (decoded from it unturned) turned by k: near zero for a decoder that draws what
    the tokens and the guide say, whichever way up they come, and the size of any pattern fixed in its
    own frame. The tokens are those of the turned image, not the token map turned: a code means a
    pattern in one orientation, so a turned map asks the decoder to stop reading the codes (it cost the
    HR tokens 1.4 dB in 150 CPU steps, checkpoints/detail-texture)."""
    turned = dihedral(floor_x4, k)
    return F.l1_loss(model.decoder(model.features(model.tokens(turned))[-1], turned), dihedral(x4, k))


def clean_lr(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """B bools: the pairs whose LR is the clean one (`hvar.pairs`: MATLAB bicubic, nothing degraded)."""
    return (batch["lr"] == batch["t1"]).flatten(1).all(1)


def detail_loss(
    model: Detail,
    batch: dict[str, torch.Tensor],
    from_floor: torch.Tensor | None = None,
    spectrum: float = 0.0,
    lowpass: float = 0.0,
    equivariance: float = 0.0,
    turn: int = 1,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    """Mean over the decoded outputs (x1, x2, x4; the plain tokenizer's x4 alone) of L1 + grad_weight *
    gradient L1 between the decoded tile and its target (x4's with `spectrum` * patch_spectrum_l1 added),
    with what the decoded x4 and the HR add to the floor's x4 (B 3 4T 4T, times RESIDUAL_GAIN: the critic's
    inputs). `from_floor` (B bools): the tiles decoded from the floor's own x4 tokens instead of the HR
    tile's; with `lowpass` > 0 the x4 terms of those with a degraded LR compare the two images blurred by
    that sigma, since those tokens cannot say where the detail goes and L1 on the full images asks for the
    blurred mean of where it might (frequency separation, as in Fritsche et al. 2019: the low frequencies
    from the reconstruction, the high ones from the critic). Clean LR (the pair's LR is its clean target x1)
    keeps the full L1: the floor's x4 of it is already sharp, and freed it lost 1.9 dB to streaks
    (checkpoints/detail-texture). With `equivariance` > 0, x4's terms add that times `equivariance_l1` for
    the symmetry `turn` (1-7) on the tiles decoded from the floor's tokens."""
    hr, guides, targets = centre_tiles(batch, model.floor_outputs(batch["lr"]), model.cfg.tile)
    idx = model.tokens(hr)
    if from_floor is not None and from_floor.any():
        own = model.tokens(guides[2])
        idx = [torch.where(from_floor.view(-1, 1), o, i) for o, i in zip(own, idx, strict=True)]
    features = model.features(idx)
    n = len(model.decoded)  # the plain tokenizer decodes x4 alone: x1 and x2 stay the floor's
    outs = [model.decoder(f, g) for f, g in zip(features, guides[-n:], strict=True)]
    parts = {}
    for s, out, target in zip(model.decoded, outs, targets[-n:], strict=True):
        if s == 4 and lowpass > 0 and from_floor is not None:
            freed = from_floor & ~clean_lr(batch)
            out, target = low_passed(out, freed, lowpass), low_passed(target, freed, lowpass)
        parts[f"x{s}"] = F.l1_loss(out, target) + model.cfg.grad_weight * image_grad_l1(out, target)
    logs = {k: float(v.detach()) for k, v in parts.items()}
    if spectrum > 0:
        amplitude = patch_spectrum_l1(outs[-1], targets[2])
        parts["x4"] = parts["x4"] + spectrum * amplitude
        logs["spectrum"] = float(amplitude.detach())
    if equivariance > 0 and from_floor is not None and from_floor.any():
        turned = equivariance_l1(model, guides[2][from_floor], outs[-1][from_floor], turn)
        parts["x4"] = parts["x4"] + equivariance * turned
        logs["equivariance"] = float(turned.detach())
    loss = sum(parts.values()) / len(parts)
    return loss, logs, RESIDUAL_GAIN * (outs[-1] - guides[2]), RESIDUAL_GAIN * (targets[2] - guides[2])


CHECKED = {"floor-alone": "floor", "hr": "oracle", "floor": "own"}  # source -> metrics prefix
# The bound on what detail may cost: x4 PSNR at most this far below the floor's.
PSNR_ALLOWANCE = 0.5
# The most streakiness (`metrics.streakiness`, Set5 mean) a kept check's detail may have: what the HR adds
# to the floor scores 0.3, an unsharp mask 0.7, the streaks that fooled NIQE 1.5-1.9 (streak_probe.py).
STREAK_LIMIT = 1.0
# What a kept check's x4 with the HR tile's tokens must stay above the floor's (dB): the tokens must still
# carry detail for a transformer to predict. detail-base starts at +1.5 (the oracle target); the
# runs that kept their tokens read +1.0 to +1.5 (lowpass-clean), the one that lost them +0.02.
ORACLE_MARGIN = 1.0
BEST_DIR = "best"


def better_check(row: dict, best: dict | None) -> bool:
    """Whether a check's row beats the best so far: a lower NIQE with the floor's own tokens (the
    tokens a transformer that knows no better gives), their x4 PSNR within PSNR_ALLOWANCE of the floor's
    on realistic and on clean LR alike, what they add no streakier than STREAK_LIMIT, and the HR tokens'
    x4 still ORACLE_MARGIN above the floor's. NIQE alone can be bought with artifacts: checks at 8.66 and
    8.80 against the floor's 10.06 drew vertical streaks, and one cost 1.9 dB on clean LR; and by decoders
    that stopped reading the tokens (checkpoints/detail-texture)."""
    if "own_niqe" not in row or row.get("own_streak", 0.0) > STREAK_LIMIT:
        return False
    if row["oracle_x4"] < row["floor_x4"] + ORACLE_MARGIN:
        return False
    for prefix in ("", "clean_"):
        if row[f"{prefix}own_x4"] < row[f"{prefix}floor_x4"] - PSNR_ALLOWANCE:
            return False
    return best is None or row["own_niqe"] < best["own_niqe"]


def quick_eval(model: Detail, name: str, with_niqe: bool = False) -> dict[str, float]:
    """Set5's realistic x4 PSNR-Y (and NIQE): the floor alone, with the HR tiles' tokens (the oracle) and
    with the floor's own tokens, and how streaky the latter two's additions are (*_streak); and the clean
    (bicubic) LR's x4 PSNR-Y of the floor alone and with its own tokens (clean_*), which detail must not
    cost either."""
    model.eval()
    ev = evaluate(model, (name,), ("realistic",), tuple(CHECKED), with_niqe=with_niqe)[name]["realistic"]
    clean = evaluate(model, (name,), ("bicubic",), ("floor-alone", "floor"), with_niqe=False)[name]["bicubic"]
    model.train()
    row = {}
    for source, prefix in CHECKED.items():
        row[f"{prefix}_x4"] = round(ev[source]["x4_psnr"], 3)
        if source != "floor-alone":
            row[f"{prefix}_streak"] = round(ev[source]["x4_streak"], 3)
        if with_niqe:
            row[f"{prefix}_niqe"] = round(ev[source]["x4_niqe"], 3)
    for source in ("floor-alone", "floor"):
        row[f"clean_{CHECKED[source]}_x4"] = round(clean[source]["x4_psnr"], 3)
    return row


def draw_curves(rows: list[dict], axes) -> None:
    train = [r for r in rows if "loss" in r]
    for key in ("loss", "x1", "x2", "x4", "spectrum", "equivariance"):
        points = [(r["step"], r[key]) for r in train if key in r]
        if points:
            axes[0].plot(*zip(*points, strict=True), label=key)
    axes[0].set_title("training loss (L1 + gradient L1) and added terms")
    ev = [r for r in rows if "oracle_x4" in r]
    labels = {"oracle": "floor + HR tokens", "floor": "floor alone", "own": "floor + its own tokens"}
    niqe = any("oracle_niqe" in r for r in ev)
    for prefix, label in labels.items():
        for key, ax in ((f"{prefix}_x4", axes[1]), (f"{prefix}_niqe", axes[2])):
            points = [(r["step"], r[key]) for r in ev if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), label=label)
    axes[1].set_title("Set5 realistic x4 PSNR-Y (dB)")
    if niqe:
        axes[2].set_title("Set5 realistic x4 NIQE (lower is better)")
    else:
        axes[2].plot([r["step"] for r in train], [r["lr"] for r in train], label="learning rate")
        axes[2].set_title("schedule")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    training.set_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out
    state = training.saved_state(out, args.resume)
    if state is None:
        if args.init:
            model = load_detail(args.init)
        else:
            tokenizer, _ = load_hit(args.tokenizer)
            model = Detail(load_floor(args.floor), tokenizer, DetailDecoder.from_hit(tokenizer))
        knobs = {"batch_size": args.batch_size, "lr": args.lr, "init": args.init,
                 "tokenizer": args.tokenizer, "floor": args.floor,
                 "spectrum": args.spectrum, "floor_tokens": args.floor_tokens,
                 "adversarial": args.adversarial, "critic_warmup": args.critic_warmup,
                 "lowpass": args.lowpass, "equivariance": args.equivariance}  # fmt: skip
        state = {"step": 0, "seconds": 0.0, "knobs": knobs}
        out.mkdir(parents=True)
    else:
        model = load_detail(out)
    knobs = state["knobs"]  # a resumed run keeps the losses it started with
    adversarial, floor_tokens = knobs.get("adversarial", 0.0), knobs.get("floor_tokens", 0.0)
    critic_warmup, spectrum = knobs.get("critic_warmup", 0), knobs.get("spectrum", 0.0)
    lowpass, equivariance = knobs.get("lowpass", 0.0), knobs.get("equivariance", 0.0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    opt = torch.optim.AdamW(model.decoder.parameters(), lr=args.lr, betas=BETAS, weight_decay=0.0)
    critic = critic_opt = None
    if adversarial > 0:
        critic = PatchDiscriminator().to(device).train()
        critic_opt = torch.optim.AdamW(critic.parameters(), lr=args.lr, betas=CRITIC_BETAS, weight_decay=0.0)
    if args.resume:
        training.load_optimizer_state(opt, out, device)
        if critic is not None:
            load_critic(critic, critic_opt, out, device)
    pairs = Pairs(args.pairs)
    rng = np.random.default_rng([args.seed, state["step"]])  # a resumed run draws new batches
    metrics, means = training.Metrics(out), training.Means()
    budget = training.Budget(args.steps, args.minutes, state["seconds"])
    n = sum(p.numel() for p in model.decoder.parameters())
    head = f"{out}: step {state['step']}, decoder {n / 1e6:.2f}M params, batch {args.batch_size}, {device}"
    print(head + (f", critic x{adversarial}" if critic is not None else ""), flush=True)

    def save() -> None:
        save_detail(model, out)
        training.save_training_state(out, opt, state)
        if critic is not None:
            save_critic(critic, critic_opt, out)
        training.save_curves(out, draw_curves)

    def check() -> None:  # NIQE moves by tenths between checks: the best one's weights are kept in best/
        row = training.log_evaluation(state["step"], evaluate, metrics, state["seconds"])
        if better_check(row, state.get("best")):
            save_detail(model, out / BEST_DIR)
            state["best"] = {k: row[k] for k in ("step", "own_x4", "own_niqe", "own_streak", "oracle_x4")}

    finished = budget.done(state["step"])
    evaluate = partial(quick_eval, model, args.eval_set, args.niqe)
    if state["step"] == 0:
        check()
    while not finished:
        step = state["step"]
        lr = training.learning_rate(step, args.lr, WARMUP, budget.progress(step))
        training.set_learning_rate(opt, lr)
        if critic_opt is not None:
            training.set_learning_rate(critic_opt, lr * CRITIC_LR_RATIO)
        drawn = {"x4": pairs.batch(rng, args.batch_size)["x4"]}
        batch = to_tensors(drawn, int(rng.integers(8)), device)["x4"]
        from_floor = None
        if floor_tokens > 0:  # drawn only then, so that a run without it sees the batches it always did
            from_floor = torch.from_numpy(rng.random(args.batch_size) < floor_tokens).to(device)
        turn = int(rng.integers(1, 8)) if equivariance > 0 else 1  # drawn only then, as from_floor
        loss, parts, fake, real = detail_loss(model, batch, from_floor, spectrum, lowpass, equivariance, turn)
        if critic is not None:
            weight = adversarial if step >= critic_warmup else 0.0
            loss, critic_parts = critic_step(critic, critic_opt, model, loss, fake, real, weight)
            parts |= critic_parts
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), GRAD_CLIP)
        opt.step()
        state |= {"step": step + 1, "seconds": budget.elapsed()}
        finished = budget.done(state["step"])
        means.add({"loss": float(loss.detach())} | parts)
        if state["step"] % 25 == 0:  # means over the 25 steps: one batch of 8 says little
            row = {"step": state["step"], **means.pop(), "lr": opt.param_groups[0]["lr"],
                   "seconds": round(state["seconds"], 1)}  # fmt: skip
            metrics.write(row)
        if state["step"] % args.eval_every == 0 or finished:
            check()
            training.periodic(state["step"], save)
    metrics.close()
    training.periodic(state["step"], save)
    print(f"stopped at step {state['step']} after {state['seconds'] / 60:.1f} min", flush=True)


def critic_step(critic, critic_opt, model: Detail, rec, fake, real, weight: float):
    """One critic update on (real, fake), what the HR and the decoded x4 add to the floor's x4, then the
    decoder's loss with the critic's term added: rec + weight * balance * g_hinge (rec alone at weight 0).
    Returns that loss and the logs."""
    critic.requires_grad_(True)
    d_loss = d_hinge(critic(real), critic(fake.detach()))
    critic_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    critic_opt.step()
    critic.requires_grad_(False)  # the decoder's backward must not reach the critic's weights
    logs = {"rec": float(rec.detach()), "critic": float(d_loss.detach())}
    if weight == 0:
        return rec, logs
    adv = g_hinge(critic(fake))
    balance = adaptive_weight(rec, adv, model.decoder.conv_out.weight)
    return rec + weight * balance * adv, logs | {"adv": float(adv.detach()), "balance": float(balance)}


CRITIC_FILE, CRITIC_OPTIM = "discriminator.safetensors", "discriminator-optim.pt"


def save_critic(critic: PatchDiscriminator, opt: torch.optim.Optimizer, out: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in critic.state_dict().items()}
    save_file(state, out / (CRITIC_FILE + ".tmp"))
    os.replace(out / (CRITIC_FILE + ".tmp"), out / CRITIC_FILE)
    training.save_optimizer_state(opt, out, CRITIC_OPTIM)


def load_critic(critic: PatchDiscriminator, opt: torch.optim.Optimizer, out: Path, device) -> None:
    if not (out / CRITIC_FILE).exists():
        print(f"--resume: no {CRITIC_FILE} in {out}; the critic starts afresh", flush=True)
        return
    critic.load_state_dict(load_file(out / CRITIC_FILE, device=str(device)))
    training.load_optimizer_state(opt, out, device, CRITIC_OPTIM)


if __name__ == "__main__":
    main()
