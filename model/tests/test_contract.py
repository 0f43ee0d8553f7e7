"""One definition of the runner's model contract: both models' graphs carry its names, shapes and
dtypes, and their PyTorch forward returns the same tensors in the same order."""

import onnx
import pytest
import torch
from tiny_models import random_hvar

from hvar import contract
from hvar.config import FLOOR_PRESETS
from hvar.floor import Floor


def tiny_floor():
    torch.manual_seed(0)
    return Floor(FLOOR_PRESETS["tiny"]).eval()


MODELS = {"hvar": lambda: random_hvar(seed=3), "floor": tiny_floor}


def table(values) -> list[tuple[str, list, str]]:
    """(name, shape, numpy dtype name) of graph values, "N" for a symbolic side."""
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in t.shape.dim]
        out.append((v.name, shape, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name))
    return out


def specs(tensors: list[contract.TensorSpec]) -> list[tuple[str, list, str]]:
    return [(t.name, list(t.shape), t.dtype) for t in tensors]


@pytest.mark.parametrize("kind", list(MODELS))
def test_the_exported_graph_has_the_contracts_inputs_and_outputs(kind, tmp_path):
    model = MODELS[kind]()
    graph = contract.export(model, tmp_path / "model.onnx")
    assert table(graph.graph.input) == specs(contract.inputs(model.tile, model.tokens))
    assert table(graph.graph.output) == specs(contract.outputs(model.tile, model.tokens))


@pytest.mark.parametrize("kind", list(MODELS))
def test_forward_returns_the_contracts_outputs_in_order(kind):
    model = MODELS[kind]()
    with torch.no_grad():
        got = model(*contract.example_inputs(model.tile, model.tokens, n=3))
    want = contract.outputs(model.tile, model.tokens)
    assert [(list(x.shape), str(x.dtype)) for x in got] == [
        ([3, *t.shape[1:]], f"torch.{t.dtype}") for t in want
    ]


def test_a_model_that_draws_nothing_takes_the_tiles_alone():
    assert [t.name for t in contract.inputs(64, 0)] == ["lr"]
    assert [t.name for t in contract.outputs(64, 0)] == list(contract.IMAGES) == ["x1", "x2", "x4"]
    assert [t.name for t in contract.inputs(64, 10)] == ["lr", "noise", "temperature"]
    assert [t.name for t in contract.outputs(64, 10)][-1] == "tokens"
