"""Export a trained H-VAR run to the runner's model contract (ONNX, version 1), verified.

    python -m hvar.export --run checkpoints/hvar-base --out ../gpu-runner/models/hvar-base \\
        --version 1.0.0 --precision mixed --evaluation runs/hvar-base-onnx.json

writes into --out:
  model.onnx          the whole inference of one batch of LR tiles in one graph, `HVAR.forward` under
                      the contract's names (`hvar.contract`): lr [N,3,T,T], noise [N,L], temperature [1]
                      -> x1, x2, x4 (and tokens [N,L], int64, for verification; the runner ignores them)
  manifest.json       the runner's manifest: id, version, tile, scales, tokens, opset, precision, sha256,
                      config (the model's HVARConfig), evaluation (numbers of this very file), training
  parity.safetensors  fixed inputs and PyTorch's answers to them (with how near each draw was to a tie),
                      so that any runtime (onnxruntime in Python here, onnxruntime-node in the runner's
                      tests) can prove it computes the same

Precision: `fp32` as traced; `mixed` stores the trained weights in float16 (half the file) and casts
them to float32 inside the graph, so every runtime computes in float32 (CPU and CUDA alike) and the
loss is only the rounding of the weights, measured by `verify`. Resize matrices and other constants
stay float32: they are exact interpolation weights, not learned numbers.

The next-scale loop, the key/value cache and the sampler are unrolled by tracing (static Python control
flow only; see `hvar.sr`); resizes are fixed matrices (`hvar.resize`), the sampler draws from the
`noise` input (`hvar.sample`): no random operator and no Resize op in the graph.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper
from safetensors.numpy import load_file as load_np
from safetensors.numpy import save_file as save_np

from hvar import acceptance, contract
from hvar.config import SCALES, HVARConfig
from hvar.detail import WEIGHTS_FILE as DETAIL_WEIGHTS
from hvar.floor import CONFIG_FILE as FLOOR_CONFIG
from hvar.sample import tie_distance
from hvar.sr import HVAR, load_hvar
from hvar.tiling import cut_tile

PRECISIONS = ("fp32", "mixed")


class TeacherForced(nn.Module):
    """Verification graph only: the same cached loop fed with given tokens -> logits [N, L, V]."""

    def __init__(self, model: HVAR):
        super().__init__()
        self.model = model

    def forward(self, lr_N3TT, idx_NL):
        spans = self.model.transformer.begin_ends
        idx_list = [idx_NL[:, b:e] for b, e in spans]
        return self.model.teacher_forced_logits_by_cache(lr_N3TT * 2 - 1, idx_list)


def export_contract(model: HVAR, path: Path, precision: str = "fp32") -> None:
    """model -> ONNX file at `path` obeying the contract (`hvar.contract`), its weights as `precision`."""
    graph = contract.export(model, path)
    if precision == "mixed":
        graph = fp16_weights(graph, list(model.parameters()))
    contract.save(graph, path)


def export_teacher_forced(model: HVAR, path: Path) -> None:
    tok = model.cfg.tokenizer
    args = (torch.rand(2, 3, tok.tile, tok.tile), torch.zeros(2, tok.num_tokens, dtype=torch.int64))
    contract.trace(
        TeacherForced(model.eval()), args, path, ("lr", "idx"), ("logits",), {"lr": {0: "N"}, "idx": {0: "N"}}
    )


def fp16_weights(graph: onnx.ModelProto, params: list[torch.Tensor]) -> onnx.ModelProto:
    """Store the float32 initializers that hold a trained weight (as traced, or transposed by the
    exporter's constant folding) as float16, each followed by a Cast back to float32. Matching by value
    keeps every other constant (resize matrices, masks, folded products) in float32."""
    learned = set()
    for p in params:
        a = p.detach().float().numpy()
        learned.add(a.tobytes())
        if a.ndim == 2:
            learned.add(np.ascontiguousarray(a.T).tobytes())
    g, casts = graph.graph, []
    for init in g.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        a = numpy_helper.to_array(init)
        if a.size < 64 or a.tobytes() not in learned:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(a.astype(np.float16), name + ".fp16"))
        casts.append(onnx.helper.make_node("Cast", [name + ".fp16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(g.node)  # casts first: the graph stays topologically sorted
    del g.node[:]
    g.node.extend(nodes)
    return graph


# ---- verification ----------------------------------------------------------------------------------------
def psnr01(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def ort_session(path: Path | str, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def parity_inputs(
    cfg: HVARConfig, n: int = 2, seed: int = 0, lr: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Fixed inputs: `lr` tiles (real photo crops if given, else smooth random images) and noise; the
    greedy case and a sampled case (temperature 1) share them."""
    tok = cfg.tokenizer
    g = torch.Generator().manual_seed(seed)
    if lr is None:
        coarse = torch.rand(n, 3, 4, 4, generator=g)
        lr = torch.nn.functional.interpolate(
            coarse, size=tok.tile, mode="bilinear", align_corners=False
        ).numpy()
    noise = torch.rand(lr.shape[0], tok.num_tokens, generator=g).numpy()
    return {"lr": np.ascontiguousarray(lr, np.float32), "noise": np.ascontiguousarray(noise, np.float32)}


TEMPERATURES = {"greedy": 0.0, "sampled": 1.0}
# Another runtime's logits differ from PyTorch's by rounding (~1e-5, see teacher_forced_error), so it may
# choose another token only where PyTorch's own draw was that close to a tie (`hvar.sample.tie_distance`).
# One flipped token changes every later scale's input: after a tile's first scale with a difference, its
# tokens are not comparable. A flat (weakly trained) distribution has many near-ties and a sampled run
# may then share few tokens with PyTorch's, yet every flip is explained; a wrong graph is not. The same
# holds for greedy decoding, whose near-ties are two almost equally likely tokens.
TIE = 1e-4


@torch.no_grad()
def pytorch_answers(model: HVAR, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch's tokens and images for the parity inputs, per temperature case."""
    out = {}
    lr, noise = torch.from_numpy(inputs["lr"]), torch.from_numpy(inputs["noise"])
    spans, top_k = model.transformer.begin_ends, model.cfg.transformer.top_k
    for case, t in TEMPERATURES.items():
        x1, x2, x4, tokens = model.eval()(lr, noise, torch.tensor([t]))
        # the logits each draw was made from (the same cached loop, fed the tokens it chose)
        logits = model.teacher_forced_logits_by_cache(lr * 2 - 1, [tokens[:, b:e] for b, e in spans])
        tie = tie_distance(logits, noise, t, top_k)
        out |= {f"{case}.{name}": v for name, v in dict(x1=x1, x2=x2, x4=x4, tokens=tokens, tie=tie).items()}
    return {k: v.numpy() for k, v in out.items()}


def unexplained_flips(
    tokens_NL: np.ndarray,
    ref_NL: np.ndarray,
    tie_NL: np.ndarray,
    spans: Sequence[tuple[int, int]] | np.ndarray,  # [S, 2]: each scale's token span
) -> int:
    """Tokens chosen differently from PyTorch (`ref`) where PyTorch's draw was not near a tie (`TIE`),
    counted in each tile's first scale with a difference: later scales follow another prefix."""
    count = 0
    for got, want, tie in zip(tokens_NL, ref_NL, tie_NL, strict=True):
        for b, e in spans:
            differ = got[b:e] != want[b:e]
            if differ.any():
                count += int((tie[b:e][differ] >= TIE).sum())
                break
    return count


@torch.no_grad()
def decode_tokens(model: HVAR, lr01: np.ndarray, tokens: np.ndarray) -> list[np.ndarray]:
    """PyTorch's x1, x2, x4 in [0, 1] for given tokens (to score images 'given the same tokens')."""
    spans = model.transformer.begin_ends
    t = torch.from_numpy(tokens)
    lr = torch.from_numpy(lr01) * 2 - 1
    guide = lr if model.cfg.tokenizer.lr_guided_decoder else None
    imgs = model.tokenizer.idx_to_imgs([t[:, b:e] for b, e in spans], guide)
    return [((im + 1) / 2).numpy() for im in imgs]


@dataclass
class Parity:
    case: str
    token_agreement: float  # fraction of tokens equal to PyTorch's
    unexplained_flips: int  # tokens chosen differently from PyTorch away from a near-tie (must be 0)
    psnr_same_tokens: tuple[float, float, float]  # x1, x2, x4 (dB) vs PyTorch decoding ONNX's tokens
    psnr_vs_pytorch: tuple[float, float, float]  # x1, x2, x4 (dB) vs PyTorch's own run


def verify_contract(
    model: HVAR, onnx_path: Path, inputs: dict[str, np.ndarray], ref: dict[str, np.ndarray] | None = None
) -> list[Parity]:
    """onnxruntime against PyTorch on the parity inputs, for greedy and sampled decoding (`ref`:
    `pytorch_answers(model, inputs)` when the caller already has them)."""
    sess = ort_session(onnx_path)
    ref = pytorch_answers(model, inputs) if ref is None else ref
    spans, rows = model.transformer.begin_ends, []
    for case, t in TEMPERATURES.items():
        x1, x2, x4, tokens = sess.run(None, {"lr": inputs["lr"], "noise": inputs["noise"],
                                             "temperature": np.array([t], np.float32)})  # fmt: skip
        same = decode_tokens(model, inputs["lr"], tokens)
        rows.append(
            Parity(
                case,
                float((tokens == ref[f"{case}.tokens"]).mean()),
                unexplained_flips(tokens, ref[f"{case}.tokens"], ref[f"{case}.tie"], spans),
                tuple(psnr01(a, b) for a, b in zip((x1, x2, x4), same, strict=True)),
                tuple(
                    psnr01(a, ref[f"{case}.{s}"])
                    for a, s in zip((x1, x2, x4), ("x1", "x2", "x4"), strict=True)
                ),
            )
        )
    return rows


def passes(row: Parity) -> bool:
    """The contract's bar: no token chosen differently away from a near-tie, and images given the
    same tokens above 50 dB."""
    return row.unexplained_flips == 0 and min(row.psnr_same_tokens) > 50


def check_overlap(overlap: int | None, tile: int) -> None:
    """Refuse (SystemExit) before any work an --overlap the runner's manifest schema would refuse."""
    if overlap is not None and not 0 <= 2 * overlap <= tile:
        raise SystemExit(f"export: --overlap {overlap} must be 0 to half the tile ({tile // 2})")


def accept(rows: list[Parity], candidate: Path, onnx_path: Path) -> None:
    """Print the parity rows; install the candidate graph as `onnx_path` if every row passes, else delete
    it and stop (SystemExit), the model folder as it was."""
    for r in rows:
        same, own = (" / ".join(f"{p:.1f}" for p in ps) for ps in (r.psnr_same_tokens, r.psnr_vs_pytorch))
        print(f"{r.case}: tokens equal {r.token_agreement:.2%}, flips away from a tie {r.unexplained_flips}; "
              f"PSNR x1/x2/x4 given the same tokens {same} dB; vs PyTorch's run {own} dB")  # fmt: skip
    failed = [r.case for r in rows if not passes(r)]
    if failed:
        candidate.unlink()
        raise SystemExit(f"export: onnxruntime does not compute what PyTorch computes ({', '.join(failed)}); "
                         "the model folder was left as it was")  # fmt: skip
    os.replace(candidate, onnx_path)


def teacher_forced_error(model: HVAR, inputs: dict[str, np.ndarray], tokens: np.ndarray) -> float:
    """Max |logit difference| between onnxruntime's and PyTorch's teacher-forced pass on given tokens."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "teacher_forced.onnx"
        export_teacher_forced(model, path)
        (logits,) = ort_session(path).run(None, {"lr": inputs["lr"], "idx": tokens})
    with torch.no_grad():
        ref = TeacherForced(model.eval())(torch.from_numpy(inputs["lr"]), torch.from_numpy(tokens)).numpy()
    return float(np.abs(logits - ref).max())


def rounded(model: HVAR) -> HVAR:
    """A copy whose weights are rounded to float16 and back: what the `mixed` graph computes with."""
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(p.half().float())
    return twin.eval()


def rounding_cost(full: dict[str, np.ndarray], rounded_: dict[str, np.ndarray]) -> dict[str, float]:
    """Greedy tokens kept and PSNR (dB) of the images when the weights are rounded to float16."""
    out = {"tokens_equal": float((full["greedy.tokens"] == rounded_["greedy.tokens"]).mean())}
    return out | {
        f"psnr_{s}": psnr01(full[f"greedy.{s}"], rounded_[f"greedy.{s}"]) for s in ("x1", "x2", "x4")
    }


# ---- files -----------------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_parity(
    path: Path, inputs: dict[str, np.ndarray], answers: dict[str, np.ndarray], spans: list[tuple[int, int]]
) -> None:
    """Inputs, tokens and tie distances of every case, images of the greedy case (sampled images are not
    comparable across runtimes: see TIE), and the scales' token spans [S, 2]."""
    kept = {k: v for k, v in answers.items() if k.endswith((".tokens", ".tie")) or k.startswith("greedy.")}
    tensors = inputs | {k: (v.astype(np.int32) if k.endswith("tokens") else v) for k, v in kept.items()}
    tensors["spans"] = np.array(spans, np.int32)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}  # safetensors writes the raw buffer
    save_np(tensors, str(path), metadata={"temperatures": json.dumps(TEMPERATURES)})


def load_parity(path: Path) -> dict[str, np.ndarray]:
    return load_np(str(path))


def photo_tiles(T: int, n: int) -> np.ndarray:
    """n LR tiles of side T cut from Set5 (real content makes the parity check meaningful for a trained
    model)."""
    from hvar import eval as protocol
    from hvar.degrade import bicubic_lr
    from hvar.paths import list_images

    _, folder = protocol.resolve_dataset("Set5", None)
    tiles = []
    for path in list_images(folder)[:n]:
        lr = bicubic_lr(protocol.load_image(path), 4)
        y, x = (lr.shape[0] - T) // 2, (lr.shape[1] - T) // 2  # centred; mirrored where T is larger
        tiles.append(cut_tile(lr, y, x, T).transpose(2, 0, 1) / 255.0)
    return np.stack(tiles).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--run",
        type=Path,
        required=True,
        help="run folder of hvar.train_transformer, hvar.train_floor or hvar.train_detail",
    )
    transformer_help = "detail runs: the transformer run (train_transformer --floor)"
    ap.add_argument("--transformer", type=Path, help=transformer_help)
    top_k_help = "detail runs: draw from the K likeliest tokens (0: all; default: the transformer's config)"
    ap.add_argument("--top-k", type=int, default=None, metavar="K", help=top_k_help)
    decode_help = "detail runs: the outputs drawn from the tokens, the others the floor's (default: all)"
    ap.add_argument("--decode", type=int, nargs="+", choices=SCALES, default=None, help=decode_help)
    stride_help = "detail runs: LR px between sub-tiles (default: side by side; less: overlapping, blended)"
    ap.add_argument("--stride", type=int, default=None, metavar="PX", help=stride_help)
    ap.add_argument("--out", type=Path, required=True, help="model folder, e.g. ../gpu-runner/models/<id>")
    ap.add_argument("--id", default=None, help="model id (default: the folder's name)")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--precision", choices=PRECISIONS, default="mixed")
    ap.add_argument(
        "--evaluation", type=Path, help="JSON of hvar.eval_sr on this model (kept in the manifest)"
    )
    ap.add_argument("--training", type=Path, help="JSON describing the training (kept in the manifest)")
    tile_help = "floor and detail runs: LR tile side served (default: its config's)"
    ap.add_argument("--tile", type=int, default=None, help=tile_help)
    overlap_help = "floor and detail runs: LR pixels tiles share, in the manifest (default: floor's reach)"
    ap.add_argument("--overlap", type=int, default=None, help=overlap_help)
    step_help = (
        "floor runs: the graph takes tiles of any side that is a multiple of this, up to --tile, and the "
        "runner fits tiles to each image (manifest `tileStep`); default: fixed tiles"
    )
    ap.add_argument("--tile-step", type=int, default=None, help=step_help)
    ap.add_argument(
        "--no-acceptance",
        dest="acceptance",
        action="store_false",
        help="write the model without running the acceptance checks (experiments; never a shipped model)",
    )
    args = ap.parse_args(argv)
    floor = (args.run / FLOOR_CONFIG).exists()  # an hvar.train_floor run folder
    detail = (args.run / DETAIL_WEIGHTS).exists()  # an hvar.train_detail run folder
    run_files = (
        (args.run / FLOOR_CONFIG,) if floor
        else (args.run / DETAIL_WEIGHTS, args.run / "floor") if detail
        else (args.run / "config.json", args.run / "tokenizer")
    )  # fmt: skip
    for path in (*run_files, args.transformer, args.evaluation, args.training):
        if path is not None and not path.exists():
            ap.error(f"{path} does not exist")
    if detail != (args.transformer is not None):
        ap.error(
            "a detail run needs --transformer (a run of train_transformer --floor), and only a detail run"
        )
    if args.decode is not None and not detail:
        ap.error("--decode is for detail runs")
    if args.stride is not None and not detail:
        ap.error("--stride is for detail runs")
    if args.top_k is not None and (not detail or args.top_k < 0):
        ap.error("--top-k is for detail runs, 0 or more")
    if args.tile is not None and (args.tile < 8 or args.tile % 4):
        ap.error("--tile must be a multiple of 4, at least 8")
    if args.tile_step is not None and (not floor or args.tile_step < 4 or args.tile_step % 4):
        ap.error("--tile-step is for floor runs, a multiple of 4")
    if args.acceptance and (why := acceptance.available()) is not None:
        ap.error(f"the acceptance checks cannot run here ({why}); --no-acceptance skips them")
    torch.backends.nnpack.set_flags(False)
    args.id = args.id or args.out.name
    out = args.out
    with tempfile.TemporaryDirectory(prefix="hvar-export-") as tmp:
        args.out = Path(tmp) / args.id  # written, verified and checked here; --out changes only after
        if floor:
            from hvar.export_floor import export_floor

            export_floor(args)
        elif detail:
            from hvar.export_detail import export_detail

            export_detail(args)
        else:
            export_hvar(args)
        record_acceptance(args.out, args.acceptance, out)
        install(args.out, out)
    print(f"wrote {out}")


def record_acceptance(folder: Path, run: bool, out: Path) -> None:
    """Runs the acceptance checks on the model in `folder` and keeps the verdict in its manifest;
    refuses (SystemExit) a model that fails one."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if not run:
        manifest["acceptance"] = {"suite": "test/acceptance", "skipped": True}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        return
    print("acceptance checks (test/acceptance) ...", flush=True)
    report = acceptance.check(folder)
    print(report.line())
    if not report.ok:
        lines = "\n".join(f"  {line}" for line in report.failed)
        raise SystemExit(
            f"export: {report.model} fails acceptance checks:\n{lines}\n"
            f"the model folder {out} was left as it was"
        )
    manifest["acceptance"] = acceptance.summary(report)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def install(folder: Path, out: Path) -> None:
    """Every file of `folder` into `out`, each replaced atomically; other files in `out` (the model
    card) stay."""
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(folder.iterdir()):
        shutil.copyfile(f, out / (f.name + ".tmp"))
        os.replace(out / (f.name + ".tmp"), out / f.name)


def export_hvar(args: argparse.Namespace) -> None:
    model = load_hvar(args.run)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    candidate = args.out / "model.onnx.tmp"  # replaces model.onnx only once verified: a failure loses nothing
    start = time.perf_counter()
    export_contract(model, candidate, args.precision)
    print(f"exported {onnx_path} ({candidate.stat().st_size / 1e6:.1f} MB, {args.precision}) "
          f"in {time.perf_counter() - start:.1f} s")  # fmt: skip

    inputs = parity_inputs(model.cfg, lr=photo_tiles(model.cfg.tokenizer.tile, 2))
    # Parity is against the weights in the graph: with `mixed`, the float16-rounded ones, so that runtimes
    # are checked against the model they execute; what the rounding itself costs is reported apart.
    reference = rounded(model) if args.precision == "mixed" else model
    answers = pytorch_answers(reference, inputs)
    rows = verify_contract(reference, candidate, inputs, answers)
    accept(rows, candidate, onnx_path)
    save_parity(args.out / "parity.safetensors", inputs, answers, model.transformer.begin_ends)
    rounding = {}
    if args.precision == "mixed":
        rounding = rounding_cost(pytorch_answers(model, inputs), answers)
        print(f"float16 weights vs float32 (PyTorch): {rounding}")

    tok = model.cfg.tokenizer
    manifest = {
        "id": args.id,
        "version": args.version,
        "tile": tok.tile,
        "scales": [1, 2, 4],
        "tokens": tok.num_tokens,
        "opset": contract.OPSET,
        "precision": args.precision,
        "sha256": sha256(onnx_path),
        "config": model.cfg.to_dict(),
        "evaluation": json.loads(args.evaluation.read_text()) if args.evaluation else {},
        "training": json.loads(args.training.read_text()) if args.training else {},
        "parameters": sum(p.numel() for p in model.parameters()),
        "verification": [r.__dict__ for r in rows],
        "rounding": rounding,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
