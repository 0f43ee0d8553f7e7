"""Put a retrained decoder under a trained transformer: a new H-VAR run without retraining it.

    python -m hvar.swap_decoder --run checkpoints/hvar-base --tokenizer runs/tok-base-rd \\
        --out runs/hvar-base-rd

The transformer predicts token indices and is conditioned on the tokenizer's encoder; the decoder
only turns tokens (and the LR guide) into pixels. A tokenizer trained with `--freeze-encoder` keeps
the encoder and codebook bit for bit, so every image keeps its tokens and the transformer is as
valid on the new decoder as on the old one. This checks that (`HIT.same_tokens_as`) and refuses a
tokenizer whose tokens differ: such a one needs `train_transformer --init` instead.

--out gets the transformer's weights, config, metrics and curves, the new tokenizer in tokenizer/,
and decoder.json saying where both came from.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from hvar.sr import HVAR, load_hvar, save_hvar
from hvar.tokenizer import load_hit

KEPT_FILES = ("metrics.jsonl", "curves.png", "training.json")  # the transformer's history, unchanged


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="trained H-VAR run (hvar.train_transformer)")
    ap.add_argument("--tokenizer", type=Path, required=True, help="tokenizer run with the new decoder")
    ap.add_argument("--out", type=Path, required=True, help="new run folder (must not exist)")
    args = ap.parse_args(argv)
    for folder in (args.run, args.tokenizer):
        if not (folder / "model.safetensors").exists():
            ap.error(f"no model.safetensors in {folder}")
    if args.out.exists():
        ap.error(f"{args.out} exists")
    return args


def swap_decoder(run: Path, tokenizer_run: Path, out: Path) -> HVAR:
    old = load_hvar(run)
    tokenizer, tok_cfg = load_hit(tokenizer_run)
    if tok_cfg.tokenizer != old.cfg.tokenizer:
        raise ValueError(f"{tokenizer_run}: its tokenizer config differs from the one {run} was trained on")
    if not old.tokenizer.same_tokens_as(tokenizer):
        raise ValueError(
            f"{tokenizer_run}: its encoder or codebook differs from {run}'s, so images get other tokens; "
            "train the transformer on it (train_transformer --init) instead"
        )
    new = HVAR(old.cfg, tokenizer)
    new.transformer.load_state_dict(old.transformer.state_dict())
    save_hvar(new, out)
    for name in KEPT_FILES:
        if (run / name).exists():
            shutil.copy2(run / name, out / name)
    provenance = {"transformer": str(run), "tokenizer": str(tokenizer_run)}
    (out / "decoder.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return new.eval()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        swap_decoder(args.run, args.tokenizer, args.out)
    except ValueError as error:
        raise SystemExit(f"swap_decoder: {error}") from None
    print(f"{args.out}: the transformer of {args.run} on the decoder of {args.tokenizer} (same tokens)")


if __name__ == "__main__":
    main()
