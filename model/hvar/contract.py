"""The runner's model contract, version 1: the inputs and outputs of an exported `model.onnx`.

One graph runs a batch of N LR tiles of side T and returns each at x1, x2 and x4 (a graph exported
`fitted` takes tiles of any H x W instead, which the runner keeps to multiples of the manifest's
`tileStep` up to T and fits to each image); a model that generates
(H-VAR: L tokens per tile) also takes one uniform per token and a temperature, and returns the tokens it
drew; a model with a clean-up setting (manifest `cleanup`: the two-stage floor) also takes its strength.
`inputs` and `outputs` below say each tensor's name, shape, dtype and values.

In PyTorch a model of the contract has `tile` (T), `tokens` (L), `cleanup` and a `forward` that takes
the inputs and returns the outputs in this order (`hvar.sr.HVAR`, `hvar.floor.Floor`; the strength as
the keyword `cleanup`); `export` traces exactly that. The runner checks the same names and shapes
before it loads a model (`gpu-runner/src/model/session.ts`) and ignores outputs it does not know
(`tokens`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
import torch.nn as nn

from hvar.config import SCALES

OPSET = 17
IMAGES = tuple(f"x{s}" for s in SCALES)  # the image outputs, one per output scale


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # "N": the dynamic batch
    dtype: str  # numpy's name
    values: str


def sides(T: int, fitted: bool, s: int = 1) -> tuple[int | str, int | str]:
    """A tile's (height, width) at output scale s: T x T, or symbolic for a fitted graph."""
    return (f"{s}H", f"{s}W") if fitted and s > 1 else ("H", "W") if fitted else (s * T, s * T)


CLEANUP = TensorSpec("cleanup", (1,), "float32", "[0, 1]: the share of the restorer's correction x1 keeps")


def takes_cleanup(model) -> bool:
    """Whether the model (PyTorch or an exported folder's session) takes the clean-up input: a two-stage
    floor does; a one-stage floor, H-VAR and the published peers do not."""
    return getattr(model, "cleanup", False)


def inputs(T: int, L: int, fitted: bool = False, cleanup: bool = False) -> list[TensorSpec]:
    lr = TensorSpec("lr", ("N", 3, *sides(T, fitted)), "float32", "[0, 1], sRGB")
    sampling = [
        TensorSpec("noise", ("N", L), "float32", "[0, 1), the uniform each token is drawn with"),
        TensorSpec("temperature", (1,), "float32", ">= 0; 0 = greedy (argmax), noise unused"),
    ]
    return [lr, *(sampling if L else []), *([CLEANUP] if cleanup else [])]


def outputs(T: int, L: int, fitted: bool = False) -> list[TensorSpec]:
    images = [
        TensorSpec(name, ("N", 3, *sides(T, fitted, s)), "float32", "[0, 1], sRGB")
        for name, s in zip(IMAGES, SCALES, strict=True)
    ]
    if L == 0:
        return images
    return [*images, TensorSpec("tokens", ("N", L), "int64", "[0, V), for verification")]


def example_inputs(T: int, L: int, n: int = 2, cleanup: bool = False) -> tuple:
    """Inputs of the contract's shapes and ranges (random tiles and noise, greedy, half the clean-up) to
    trace with; the strength goes in as the keyword `cleanup` (a trailing dict, as torch.onnx takes it)."""
    lr_N3TT = torch.rand(n, 3, T, T)
    args = (lr_N3TT,) if L == 0 else (lr_N3TT, torch.rand(n, L), torch.tensor([0.0]))
    return (*args, {"cleanup": torch.tensor([0.5])}) if cleanup else args


def trace(module: nn.Module, args: tuple, path: Path, names_in, names_out, dynamic: dict) -> None:
    """torch's tracing exporter at the contract's opset: the graph of one call with static Python
    control flow (the next-scale loop, the cache and the sampler unrolled)."""
    with warnings.catch_warnings():  # tracer warnings about Python ints in shapes: static by design
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=list(names_in), output_names=list(names_out),
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def export(model: nn.Module, path: Path, fitted: bool = False) -> onnx.ModelProto:
    """The graph of `model.forward` under the contract's names, with a dynamic batch N and every other
    side static, or, `fitted`, the tiles' sides symbolic too (only for a model that computes the same at
    any size: the floor). The tracer names some sides itself (e.g. x1's as the result of a Div, and the
    runner checks each side against its manifest). Written to `path` as traced; the returned graph has
    the contract's sides, for the caller to finish (`save`)."""
    T, L, strength = model.tile, model.tokens, takes_cleanup(model)
    specs_in, specs_out = inputs(T, L, fitted, strength), outputs(T, L, fitted)
    specs = (*specs_in, *specs_out)
    symbolic = {t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)} for t in specs}
    dynamic = {name: dims for name, dims in symbolic.items() if dims}
    names_in, names_out = [t.name for t in specs_in], [t.name for t in specs_out]
    trace(model.eval(), example_inputs(T, L, cleanup=strength), path, names_in, names_out, dynamic)
    graph = onnx.load(str(path))
    shapes = {t.name: t.shape[1:] for t in specs_out}
    for out in graph.graph.output:
        for d, n in zip(out.type.tensor_type.shape.dim[1:], shapes[out.name], strict=True):
            d.Clear()
            if isinstance(n, str):
                d.dim_param = n
            else:
                d.dim_value = n
    return graph


def save(graph: onnx.ModelProto, path: Path) -> None:
    onnx.save(graph, str(path))
    onnx.checker.check_model(str(path), full_check=True)
