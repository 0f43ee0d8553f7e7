"""Export the detail path (`hvar.detail_sr`: floor, transformer, detail decoder) to the runner's model
contract, verified.

    python -m hvar.export --run runs/detail --transformer runs/hvar-floor-hint --tile 128 --top-k 64 \\
        --decode 4 --stride 24 --out runs/export/hvar-detail --version 3.0.0-detail

(`--decode 4`: x4 from the tokens, x1 and x2 the floor's; `--top-k`: the sampler's K likeliest tokens;
`--stride 24`: sub-tiles 24 LR px apart, overlapping by 8 and blended, `detail_sr.SubTiles`.)

(`hvar.export` hands detail runs, folders with a `decoder.safetensors`, to `export_detail`.) The graph
is the contract's for a model that draws: lr [N,3,T,T], noise [N,L], temperature [1] -> x1, x2, x4,
tokens [N,L], with L = (T/t)^2 times the transformer's tokens (t: the tokenizer's tile). The weights
stay float32. As for an H-VAR export, onnxruntime must draw PyTorch's tokens wherever PyTorch's draw was
not within rounding of a tie, and give PyTorch's images for the tokens it drew (`export.passes`), at
temperature 0 and 1, before model.onnx is written; parity.safetensors keeps the inputs and answers for
the runner's own test (spans: every sub-tile's scales, one after another).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from hvar import contract
from hvar.config import SCALES
from hvar.contract import IMAGES
from hvar.detail import load_detail
from hvar.detail_sr import DetailSR
from hvar.export import (
    TEMPERATURES,
    Parity,
    accept,
    check_overlap,
    ort_session,
    photo_tiles,
    psnr01,
    save_parity,
    sha256,
    unexplained_flips,
)
from hvar.sample import tie_distance
from hvar.sr import load_hvar

PARITY_TILES_MAX_SIDE = 64  # two parity tiles up to this LR side, one above (x4 answers: 16 times a tile)


@torch.no_grad()
def pytorch_answers(model: DetailSR, lr: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
    """PyTorch's images and tokens per temperature case, with how near each draw was to a tie."""
    out, hvar = {}, model.transformer
    spans, top_k, L = hvar.transformer.begin_ends, hvar.cfg.transformer.top_k, hvar.tokens
    lr_t, noise_t = torch.from_numpy(lr), torch.from_numpy(noise)
    sub_tiles = model.sub_tiles(model.guides(lr_t)[2])
    for case, t in TEMPERATURES.items():
        x1, x2, x4, tokens = model(lr_t, noise_t, torch.tensor([t]))
        idx_nl = tokens.reshape(-1, L)
        logits = hvar.teacher_forced_logits_by_cache(sub_tiles, [idx_nl[:, b:e] for b, e in spans])
        tie = tie_distance(logits, noise_t.reshape(-1, L), t, top_k).reshape(tokens.shape)
        out |= {f"{case}.{name}": v for name, v in dict(x1=x1, x2=x2, x4=x4, tokens=tokens, tie=tie).items()}
    return {k: v.numpy() for k, v in out.items()}


def verify(model: DetailSR, path: Path, lr: np.ndarray, noise: np.ndarray, ref: dict) -> list[Parity]:
    """onnxruntime against PyTorch (`ref`: `pytorch_answers`), per temperature case; tokens compared per
    sub-tile, since each sub-tile's scales follow only its own earlier draws."""
    sess, L = ort_session(path), model.transformer.tokens
    spans, rows = model.transformer.transformer.begin_ends, []
    for case, t in TEMPERATURES.items():
        feed = {"lr": lr, "noise": noise, "temperature": np.array([t], np.float32)}
        x1, x2, x4, tokens = sess.run(None, feed)
        same = model.decode_tokens(torch.from_numpy(lr), torch.from_numpy(tokens))
        want = ref[f"{case}.tokens"]
        flips = unexplained_flips(
            tokens.reshape(-1, L), want.reshape(-1, L), ref[f"{case}.tie"].reshape(-1, L), spans
        )
        rows.append(
            Parity(
                case,
                float((tokens == want).mean()),
                flips,
                tuple(psnr01(a, b.numpy()) for a, b in zip((x1, x2, x4), same, strict=True)),
                tuple(psnr01(a, ref[f"{case}.{s}"]) for a, s in zip((x1, x2, x4), IMAGES, strict=True)),
            )
        )
    return rows


def parameters(model: DetailSR) -> int:
    """Weights in the graph: the tokenizer's encoder and codebook are in it once, its decoder not at all."""
    d = model.detail
    tokenizer = (*d.tokenizer.token_parts(), d.tokenizer.post_quant_conv)
    parts = (d.floor, d.decoder, model.transformer.transformer, *tokenizer)
    return sum(p.numel() for m in parts for p in m.parameters())


def export_detail(args: argparse.Namespace) -> None:
    detail, transformer = load_detail(args.run), load_hvar(args.transformer)
    if args.top_k is not None:  # a sampling choice, not a weight: the graph's sampler keeps K tokens
        drawing = dataclasses.replace(transformer.cfg.transformer, top_k=args.top_k)
        transformer.cfg = dataclasses.replace(transformer.cfg, transformer=drawing)
    try:
        model = DetailSR(detail, transformer, args.tile or detail.cfg.tile, args.decode, args.stride).eval()
    except ValueError as e:  # a tile, transformer or --decode the detail path cannot take
        raise SystemExit(f"export: {e}") from None
    check_overlap(args.overlap, model.tile)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path, candidate = args.out / "model.onnx", args.out / "model.onnx.tmp"
    start = time.perf_counter()
    contract.save(contract.export(model, candidate), candidate)
    size_mb, seconds = candidate.stat().st_size / 1e6, time.perf_counter() - start
    print(f"exported {onnx_path} ({size_mb:.1f} MB, fp32, tile {model.tile}, {model.tokens} tokens) "
          f"in {seconds:.1f} s")  # fmt: skip

    n = 2 if model.tile <= PARITY_TILES_MAX_SIDE else 1
    lr = photo_tiles(model.tile, n)
    noise = torch.rand(n, model.tokens, generator=torch.Generator().manual_seed(0)).numpy()
    answers = pytorch_answers(model, lr, noise)
    rows = verify(model, candidate, lr, noise, answers)
    accept(rows, candidate, onnx_path)
    L, sub_tiles = model.transformer.tokens, model.g * model.g
    scales = model.transformer.transformer.begin_ends
    spans = [(j * L + b, j * L + e) for j in range(sub_tiles) for b, e in scales]
    save_parity(args.out / "parity.safetensors", {"lr": lr, "noise": noise}, answers, spans)

    manifest = {
        "id": args.id,
        "version": args.version,
        "tile": model.tile,
        "overlap": args.overlap if args.overlap is not None else model.overlap,
        "scales": list(SCALES),
        "tokens": model.tokens,
        "opset": contract.OPSET,
        "precision": "fp32",
        "sha256": sha256(onnx_path),
        "config": {  # the tokenizer and transformer (HVARConfig), the floor, and where they came from
            **model.transformer.cfg.to_dict(),
            "floor": detail.floor.cfg.to_dict(),
            "runs": {"detail": str(args.run), "transformer": str(args.transformer)},
            "subTiles": sub_tiles,
            "subTileStride": model.grid.stride,  # LR px; under the tokenizer's tile they overlap, blended
            "decode": list(model.decode),  # the outputs drawn from the tokens; the others are the floor's
        },
        "evaluation": json.loads(args.evaluation.read_text()) if args.evaluation else {},
        "training": json.loads(args.training.read_text()) if args.training else {},
        "parameters": parameters(model),
        "verification": [r.__dict__ for r in rows],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
