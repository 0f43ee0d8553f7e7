"""The ONNX export computes what PyTorch computes: the model contract, verified (issue: export)."""

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tiny_models import random_hvar

from hvar import export as ex

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.parent for p in (REPO / "gpu-runner" / "models").glob("*/manifest.json"))
# Models that generate detail (tokens > 0); the floor alone is checked by test_export_floor.py.
GENERATIVE = [p for p in SHIPPED if json.loads((p / "manifest.json").read_text())["tokens"] > 0]


@pytest.fixture(scope="module")
def model():
    return random_hvar(seed=3)


@pytest.fixture(scope="module")
def fp32_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    ex.export_contract(model, path, "fp32")
    return path


@pytest.fixture(scope="module")
def mixed_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    ex.export_contract(model, path, "mixed")
    return path


def test_the_graph_passes_the_onnx_checker_and_has_the_contract_io(fp32_file):
    graph = onnx.load(str(fp32_file))
    onnx.checker.check_model(graph, full_check=True)
    assert [i.name for i in graph.graph.input] == ["lr", "noise", "temperature"]
    assert [o.name for o in graph.graph.output] == ["x1", "x2", "x4", "tokens"]


def test_the_outputs_have_the_contracts_static_shapes(model, fp32_file):
    T, L = model.cfg.tokenizer.tile, model.cfg.tokenizer.num_tokens
    shapes = {
        o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]
        for o in onnx.load(str(fp32_file)).graph.output
    }
    assert shapes == {
        "x1": ["N", 3, T, T], "x2": ["N", 3, 2 * T, 2 * T], "x4": ["N", 3, 4 * T, 4 * T], "tokens": ["N", L]
    }  # fmt: skip


def test_the_graph_has_no_random_operators(fp32_file):
    ops = {n.op_type for n in onnx.load(str(fp32_file)).graph.node}
    assert not ops & {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial"}


def test_only_the_decoders_nearest_upsampling_is_a_resize_op(fp32_file):
    """Area, bilinear and bicubic resizes are fixed matrices; nearest x2 is the one resize that ONNX's
    Resize computes exactly as PyTorch does."""
    for node in onnx.load(str(fp32_file)).graph.node:
        if node.op_type == "Resize":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["mode"] == b"nearest" and node.name.startswith("/decoder/"), node.name


@pytest.mark.parametrize("case", list(ex.TEMPERATURES))
def test_onnxruntime_matches_pytorch_tokens_and_images(model, fp32_file, case):
    (row,) = [r for r in ex.verify_contract(model, fp32_file, ex.parity_inputs(model.cfg)) if r.case == case]
    assert ex.passes(row), row


def test_a_graph_of_slightly_different_weights_makes_flips_away_from_a_tie(model, fp32_file):
    """The sampled check catches a graph that computes something else, even when it shares most tokens."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.transformer.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) * 0.01)
    rows = {r.case: r for r in ex.verify_contract(other, fp32_file, ex.parity_inputs(model.cfg))}
    assert rows["sampled"].unexplained_flips > 0 and not ex.passes(rows["sampled"])


def test_teacher_forced_logits_agree_to_1e_4(model):
    inputs = ex.parity_inputs(model.cfg)
    tokens = ex.pytorch_answers(model, inputs)["sampled.tokens"]
    assert ex.teacher_forced_error(model, inputs, tokens) < 1e-4


def test_the_batch_dimension_is_dynamic(model, fp32_file):
    inputs = ex.parity_inputs(model.cfg, n=3, seed=1)
    x1, x2, x4, tokens = ex.ort_session(fp32_file).run(
        None, inputs | {"temperature": np.zeros(1, np.float32)}
    )
    T = model.cfg.tokenizer.tile
    assert x1.shape == (3, 3, T, T) and x2.shape == (3, 3, 2 * T, 2 * T) and x4.shape == (3, 3, 4 * T, 4 * T)
    assert tokens.shape == (3, model.cfg.tokenizer.num_tokens)


def test_mixed_precision_halves_the_weights_and_matches_the_rounded_model(model, fp32_file, mixed_file):
    assert mixed_file.stat().st_size < 0.7 * fp32_file.stat().st_size
    rows = ex.verify_contract(ex.rounded(model), mixed_file, ex.parity_inputs(model.cfg))
    assert all(ex.passes(r) for r in rows), rows


def test_mixed_precision_keeps_resize_matrices_in_float32(model, mixed_file):
    graph = onnx.load(str(mixed_file))
    halves = {i.name for i in graph.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    n_learned = sum(1 for p in model.parameters() if p.numel() >= 64)
    assert len(halves) >= 0.9 * n_learned
    up = model.up_lr.numpy()  # the bilinear LR upsampling matrix: a constant, not a weight
    consts = [onnx.numpy_helper.to_array(i) for i in graph.graph.initializer]
    nodes = [n for n in graph.graph.node if n.op_type == "Constant"]
    consts += [onnx.numpy_helper.to_array(n.attribute[0].t) for n in nodes]
    assert any(a.dtype == np.float32 and (np.array_equal(a, up) or np.array_equal(a, up.T)) for a in consts)


def test_the_export_cli_writes_a_model_folder_the_runner_accepts(tmp_path, model, photo_root):
    # photo_root: the parity tiles are cut from Set5's photos, here small synthetic ones
    from hvar.sr import save_hvar

    run = tmp_path / "run"
    save_hvar(model, run)
    out = tmp_path / "models" / "hvar-tiny"
    ex.main(
        ["--run", str(run), "--out", str(out), "--precision", "fp32", "--version", "0.1.0", "--no-acceptance"]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["id"] == "hvar-tiny" and manifest["sha256"] == ex.sha256(out / "model.onnx")
    assert (
        manifest["tile"] == model.cfg.tokenizer.tile and manifest["tokens"] == model.cfg.tokenizer.num_tokens
    )
    assert manifest["scales"] == [1, 2, 4] and manifest["precision"] == "fp32"
    parity = ex.load_parity(out / "parity.safetensors")
    feeds = {"lr": parity["lr"], "noise": parity["noise"], "temperature": np.zeros(1, np.float32)}
    x1, _, x4, tokens = ex.ort_session(out / "model.onnx").run(None, feeds)
    assert np.array_equal(tokens, parity["greedy.tokens"])  # the saved inputs replay the saved answers
    assert ex.psnr01(x1, parity["greedy.x1"]) > 50 and ex.psnr01(x4, parity["greedy.x4"]) > 50


def test_a_refused_export_replaces_nothing_in_the_model_folder(tmp_path, model, monkeypatch, photo_root):
    from hvar.sr import save_hvar

    run, out = tmp_path / "run", tmp_path / "models" / "hvar-tiny"
    save_hvar(model, run)
    ex.main(["--run", str(run), "--out", str(out), "--precision", "fp32", "--no-acceptance"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(ex, "passes", lambda row: False)  # as if onnxruntime disagreed with PyTorch
    with pytest.raises(SystemExit, match="left as it was"):
        ex.main(["--run", str(run), "--out", str(out), "--precision", "mixed", "--no-acceptance"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---- the committed model(s) -------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_a_shipped_model_matches_its_manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == ex.sha256(folder / "model.onnx")
    assert (folder / "model.onnx").stat().st_size < 25e6
    onnx.checker.check_model(str(folder / "model.onnx"), full_check=True)


@pytest.mark.parametrize("folder", GENERATIVE, ids=[p.name for p in GENERATIVE])
def test_a_shipped_model_reproduces_pytorchs_greedy_answers(folder):
    """Against the PyTorch answers saved at export time: tokens, and images (> 50 dB) of the tiles whose
    tokens are all equal, i.e. given the same tokens."""
    parity = ex.load_parity(folder / "parity.safetensors")
    feeds = {"lr": parity["lr"], "noise": parity["noise"], "temperature": np.zeros(1, np.float32)}
    x1, x2, x4, tokens = ex.ort_session(folder / "model.onnx", threads=2).run(None, feeds)
    ref = parity["greedy.tokens"]
    assert ex.unexplained_flips(tokens, ref, parity["greedy.tie"], parity["spans"]) == 0
    same = (tokens == ref).all(axis=1)
    assert same.any()
    for name, x in zip(("x1", "x2", "x4"), (x1, x2, x4), strict=True):
        assert ex.psnr01(x[same], parity[f"greedy.{name}"][same]) > 50, name


@pytest.mark.parametrize("folder", GENERATIVE, ids=[p.name for p in GENERATIVE])
def test_a_shipped_model_samples_pytorchs_tokens(folder):
    parity = ex.load_parity(folder / "parity.safetensors")
    feeds = {"lr": parity["lr"], "noise": parity["noise"], "temperature": np.ones(1, np.float32)}
    tokens = ex.ort_session(folder / "model.onnx", threads=2).run(["tokens"], feeds)[0]
    assert ex.unexplained_flips(tokens, parity["sampled.tokens"], parity["sampled.tie"], parity["spans"]) == 0


def test_the_same_inputs_give_the_same_outputs(fp32_file):
    """Two runs are bit-identical, sampling included: the graph has no hidden randomness."""
    sess = ex.ort_session(fp32_file)
    feeds = ex.parity_inputs(random_hvar(seed=3).cfg) | {"temperature": np.ones(1, np.float32)}
    a, b = sess.run(None, feeds), sess.run(None, feeds)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


SPANS = [(0, 1), (1, 5), (5, 14)]  # three scales of 1, 4 and 9 tokens


def flip(tokens: np.ndarray, *positions: int) -> np.ndarray:
    out = tokens.copy()
    out[0, list(positions)] += 1
    return out


def test_a_flip_where_pytorchs_draw_was_near_a_tie_is_explained():
    ref, tie = np.zeros((1, 14), np.int64), np.ones((1, 14), np.float32)
    tie[0, 2] = ex.TIE / 10
    assert ex.unexplained_flips(flip(ref, 2), ref, tie, SPANS) == 0


def test_a_flip_far_from_a_tie_is_counted():
    ref, tie = np.zeros((1, 14), np.int64), np.ones((1, 14), np.float32)
    tie[0, 2] = ex.TIE / 10
    assert ex.unexplained_flips(flip(ref, 2, 3), ref, tie, SPANS) == 1


def test_scales_after_the_first_flipped_one_are_not_compared():
    """They are drawn from another prefix: any of their tokens may differ."""
    ref, tie = np.zeros((1, 14), np.int64), np.ones((1, 14), np.float32)
    tie[0, 0] = 0.0
    assert ex.unexplained_flips(flip(ref, 0, 3, 9, 13), ref, tie, SPANS) == 0
