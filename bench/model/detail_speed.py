"""Where the time of Model 2.0's detail path goes, per 32 px LR tile, in PyTorch on the CPU.

    model/.venv/bin/python bench/model/detail_speed.py --run model/checkpoints/detail-base \\
        --transformer-config model/checkpoints/hvar-floor-hint/config.json --threads 2

The detail stage is not exported yet, so this times its parts where they run today, one after the
other as a request would: the floor (x1, x2, x4 of the tile), the encoder (the floor's x4 to the
transformer's condition and its own tokens, the hint), the transformer (the condition through the
blocks, then every scale with its key/value cache), and the detail decoder at x1, x2 and x4. The
transformer's weights are drawn at random (from the config): its work does not depend on them, nor on
the tiles' content. Each part is the median of --repeats timed runs after one warm-up. Run it on an
otherwise idle machine. Prints a markdown table per batch size: ms per tile, share, and the x4 output
MP/s the path would reach without the parts above it (the issue asks 0.3 with detail on 2 cores).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hvar.config import HVARConfig
from hvar.detail import load_detail
from hvar.sr import HVAR


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, first-run kernel choices
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def part_seconds(model, hvar: HVAR, batch: int, repeats: int) -> dict[str, float]:
    """Seconds per batch of each part of the detail path, on random LR tiles."""
    T = hvar.tile
    lr01 = torch.rand(batch, 3, T, T, generator=torch.Generator().manual_seed(0))
    x1, x2, x4 = model.floor_outputs(lr01)
    _, idx = hvar.condition_and_lr_tokens(x4)  # any valid tokens: the floor's own
    feats = model.features(idx)
    t = {
        "floor": median_seconds(lambda: model.floor_outputs(lr01), repeats),
        "encoder (condition + hint)": median_seconds(lambda: hvar.condition_and_lr_tokens(x4), repeats),
    }
    # The cached inference loop fed the tokens (sampling is a top-k over 512 logits: negligible).
    loop = median_seconds(lambda: hvar.teacher_forced_logits_by_cache(x4, idx), repeats)
    t["transformer (condition + 10 scales)"] = max(loop - t["encoder (condition + hint)"], 0.0)
    t["token features"] = median_seconds(lambda: model.features(idx), repeats)
    for f, g, name in zip(feats, (x1, x2, x4), ("x1", "x2", "x4"), strict=True):
        t[f"decoder {name}"] = median_seconds(lambda f=f, g=g: model.decoder(f, g), repeats)
    return t


def table(t: dict[str, float], batch: int, out_px: int) -> str:
    total = sum(t.values())
    rows = [
        f"| batch {batch} | ms/tile | share | x4 MP/s without it |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in t.items():
        without = batch * out_px / (total - s) / 1e6 if total > s else float("inf")
        rows.append(f"| {name} | {1000 * s / batch:.1f} | {100 * s / total:.0f}% | {without:.3f} |")
    mps = batch * out_px / total / 1e6
    rows.append(f"| **whole path** | **{1000 * total / batch:.1f}** | 100% | **{mps:.3f}** |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a detail run folder (hvar.detail.save_detail)")
    ap.add_argument("--transformer-config", type=Path, required=True, help="an H-VAR run's config.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.nnpack.set_flags(False)
    torch.manual_seed(0)

    model = load_detail(args.run).eval()
    cfg = HVARConfig.from_dict(json.loads(args.transformer_config.read_text()))
    hvar = HVAR(cfg, model.tokenizer).eval()
    if cfg.tokenizer != model.cfg:
        ap.error("the transformer's config names another tokenizer than the detail run decodes")

    def millions(m: torch.nn.Module) -> str:
        return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f}M"

    tok, tr = cfg.tokenizer, cfg.transformer
    print(
        f"{args.threads} threads; LR tile {tok.tile} px, {tok.num_tokens} tokens; transformer "
        f"{millions(hvar.transformer)} (depth {tr.depth}, width {tr.width}); encoder "
        f"{millions(model.tokenizer.encoder)}; detail decoder {millions(model.decoder)}; "
        f"floor {millions(model.floor)}"
    )
    for batch in args.batches:
        print()
        print(table(part_seconds(model, hvar, batch, args.repeats), batch, tok.hr_tile**2))


if __name__ == "__main__":
    main()
