"""Where the time of Model 2.0's detail path goes, per 32 px LR tile, on the CPU.

    model/.venv/bin/python bench/model/detail_speed.py --run model/checkpoints/detail-base \\
        --transformer-config model/checkpoints/hvar-floor-hint/config.json --threads 2 --runtime onnxruntime

The detail stage is not exported yet, so this times its parts one after the other as a request would
run them: the floor (x1, x2, x4 of the tile), the encoder (the floor's x4 to the transformer's
condition and its own tokens, the hint), the transformer (the condition through the blocks, then every
scale with its key/value cache), the sampler (a top-k draw of every token; the graph computes it for
greedy decoding too, selecting with `torch.where`), and the detail decoder at x1, x2 and x4.
`--runtime onnxruntime` traces each part to its own ONNX graph and times it in onnxruntime, the
runner's runtime (the runner's tiling, overlap and queues come on top); `pytorch` times the modules as
they are. The transformer's weights are drawn at random (from the config, which may be edited to time
another size): its work depends neither on them nor on the tiles' content. Each part is the median of
--repeats timed runs after one warm-up. Run it on an otherwise idle machine. Prints a markdown table
per batch size: ms per tile, share, and the x4 output MP/s the path would reach without each part (the
issue asks 0.3 with detail on 2 cores).
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from tile_speed import median_seconds  # this folder: scripts run as files

from hvar import contract
from hvar.config import HVARConfig
from hvar.detail import load_detail
from hvar.export import ort_session
from hvar.sample import sample_top_k
from hvar.sr import HVAR

ENCODER = "encoder (condition + hint)"
LOOP = "encoder + transformer"
TRANSFORMER = "transformer (condition + 10 scales)"
SAMPLER = "sampler (top-k draws of every token)"


class Part(nn.Module):
    """One part of the path as a module over tensors, so that it can be traced to ONNX on its own."""

    def __init__(self, fn, owner: nn.Module):
        super().__init__()
        self.fn, self.owner = fn, owner  # owner: the part's weights, registered for the exporter

    def forward(self, *xs: torch.Tensor):
        return self.fn(*xs)


@torch.no_grad()
def parts(model, hvar: HVAR, batch: int) -> dict[str, tuple[Part, tuple[torch.Tensor, ...]]]:
    """Each part of the detail path with its inputs for one batch of random LR tiles."""
    T = hvar.tile
    lr01 = torch.rand(batch, 3, T, T, generator=torch.Generator().manual_seed(0))
    x1, x2, x4 = model.floor_outputs(lr01)
    _, idx = hvar.condition_and_lr_tokens(x4)  # any valid tokens: the floor's own
    spans = hvar.transformer.begin_ends

    def encoder(x4_):
        f, idx_ = hvar.condition_and_lr_tokens(x4_)
        return f, torch.cat(idx_, dim=1)

    def loop(x4_, idx_NL):  # the cached inference loop fed the tokens, without the sampler
        return hvar.teacher_forced_logits_by_cache(x4_, [idx_NL[:, b:e] for b, e in spans])

    def sampler(logits_BLV, u_BL, temperature_1):  # every scale's draws at once: the same work
        return sample_top_k(logits_BLV, u_BL, temperature_1, hvar.cfg.transformer.top_k)

    logits = hvar.teacher_forced_logits_by_cache(x4, idx)
    u = torch.rand(logits.shape[:2], generator=torch.Generator().manual_seed(1))

    out = {
        "floor": (Part(lambda lr: tuple(model.floor_outputs(lr)), model.floor), (lr01,)),
        ENCODER: (Part(encoder, hvar.tokenizer), (x4,)),
        LOOP: (Part(loop, hvar), (x4, torch.cat(idx, dim=1))),
        SAMPLER: (Part(sampler, hvar), (logits, u, torch.ones(1))),
        "token features": (Part(lambda *i: tuple(model.features(list(i))), model.tokenizer), tuple(idx)),
    }
    for f, g, name in zip(model.features(idx), (x1, x2, x4), ("x1", "x2", "x4"), strict=True):
        out[f"decoder {name}"] = (Part(lambda f_, g_: model.decoder(f_, g_), model.decoder), (f, g))
    return out


def torch_seconds(part: Part, xs: tuple[torch.Tensor, ...], repeats: int) -> float:
    with torch.no_grad():
        return median_seconds(lambda: part(*xs), repeats)


def ort_seconds(part: Part, xs: tuple[torch.Tensor, ...], repeats: int, threads: int, folder: Path) -> float:
    """The part traced to ONNX (static shapes) and timed in onnxruntime, the runner's runtime."""
    path = folder / "part.onnx"
    names = [f"in{i}" for i in range(len(xs))]
    contract.trace(part.eval(), xs, path, names, (), {})
    sess = ort_session(path, threads)
    feed = {n: x.numpy() for n, x in zip(names, xs, strict=True)}
    return median_seconds(lambda: sess.run(None, feed), repeats)


def part_seconds(model, hvar: HVAR, batch: int, repeats: int, runtime: str, threads: int) -> dict[str, float]:
    """Seconds per batch of each part; the transformer's is the loop's less the encoder inside it."""
    with tempfile.TemporaryDirectory() as tmp:
        t = {}
        for name, (part, xs) in parts(model, hvar, batch).items():
            if runtime == "onnxruntime":
                t[name] = ort_seconds(part, xs, repeats, threads, Path(tmp))
            else:
                t[name] = torch_seconds(part, xs, repeats)
    t[TRANSFORMER] = max(t.pop(LOOP) - t[ENCODER], 0.0)
    order = ["floor", ENCODER, TRANSFORMER, SAMPLER, "token features"]
    return {k: t[k] for k in order + [f"decoder {s}" for s in ("x1", "x2", "x4")]}


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
    ap.add_argument("--runtime", choices=("pytorch", "onnxruntime"), default="pytorch")
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
        f"{args.runtime}, {args.threads} threads; LR tile {tok.tile} px, {tok.num_tokens} tokens; "
        f"transformer {millions(hvar.transformer)} (depth {tr.depth}, width {tr.width}); encoder "
        f"{millions(model.tokenizer.encoder)}; detail decoder {millions(model.decoder)}; "
        f"floor {millions(model.floor)}"
    )
    for batch in args.batches:
        print()
        t = part_seconds(model, hvar, batch, args.repeats, args.runtime, args.threads)
        print(table(t, batch, tok.hr_tile**2))


if __name__ == "__main__":
    main()
