"""The published peers as runner model folders: the contract's graph, a manifest the runner accepts."""

import json

import numpy as np
import onnx
import pytest
import torch

from hvar import export_peer as ep
from hvar.export import ort_session, sha256
from hvar.rlfn import RLFN, RLFNConfig


@pytest.fixture(scope="module")
def tiny_peer():
    torch.manual_seed(0)
    return ep.X4Peer(RLFN(RLFNConfig(ch=8, esa_ch=4, blocks=1)).eval(), tile=24)


@pytest.fixture(scope="module")
def exported(tiny_peer, tmp_path_factory):
    out = tmp_path_factory.mktemp("peers") / "tiny-t24"
    manifest = ep.export_peer(tiny_peer, out, id="tiny", overlap=6, config={"network": "tiny"})
    return out, manifest


def test_the_folder_holds_the_graph_and_a_manifest_of_its_sha256(exported):
    out, manifest = exported
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["sha256"] == sha256(out / "model.onnx")
    assert (manifest["id"], manifest["tile"], manifest["overlap"], manifest["tokens"]) == ("tiny", 24, 6, 0)


def test_the_manifest_is_strict_json_as_the_runner_parses_it(exported):
    """JavaScript's JSON.parse refuses Infinity and NaN, which Python's json writes by default."""
    out, _ = exported

    def refuse(constant: str):
        raise ValueError(f"{constant} in manifest.json")

    json.loads((out / "manifest.json").read_text(), parse_constant=refuse)


def test_the_graph_has_the_contracts_names_and_static_sides(exported):
    out, _ = exported
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["lr"]
    dims = {o.name: o.type.tensor_type.shape.dim for o in graph.output}
    shapes = {name: [d.dim_value or d.dim_param for d in dim] for name, dim in dims.items()}
    assert shapes == {"x1": ["N", 3, 24, 24], "x2": ["N", 3, 48, 48], "x4": ["N", 3, 96, 96]}


def test_x4_is_the_networks_x2_its_area_average_and_x1_the_input(exported, tiny_peer):
    out, _ = exported
    lr = np.random.default_rng(1).random((3, 3, 24, 24), dtype=np.float32)
    x1, x2, x4 = ort_session(out / "model.onnx").run(["x1", "x2", "x4"], {"lr": lr})
    with torch.no_grad():
        want = (tiny_peer.net(torch.from_numpy(lr) * 255) / 255).clamp(0, 1).numpy()
    np.testing.assert_allclose(x4, want, atol=1e-5)
    np.testing.assert_allclose(x2, x4.reshape(3, 3, 48, 2, 48, 2).mean(axis=(3, 5)), atol=1e-6)
    np.testing.assert_array_equal(x1, lr)


def test_a_second_export_replaces_the_folder_whole(exported, tiny_peer):
    out, _ = exported
    (out / "stale.onnx").write_bytes(b"old")
    ep.export_peer(tiny_peer, out, id="tiny", overlap=6, config={})
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]


def test_a_peer_exported_with_the_served_tile_step_takes_any_sides_and_computes_the_network(tmp_path):
    """So that the bench cuts a peer's images as it cuts the served model's (fitted tiles)."""
    torch.manual_seed(0)
    peer = ep.X4Peer(RLFN(RLFNConfig(ch=8, esa_ch=4, blocks=1)).eval(), tile=48)
    manifest = ep.export_peer(peer, tmp_path / "p", id="tiny", overlap=6, config={}, step=16)
    assert manifest["tileStep"] == 16
    lr = np.random.default_rng(2).random((1, 3, 32, 48), dtype=np.float32)
    x4 = ort_session(tmp_path / "p" / "model.onnx").run(["x4"], {"lr": lr})[0]
    with torch.no_grad():
        want = (peer.net(torch.from_numpy(lr) * 255) / 255).clamp(0, 1).numpy()
    np.testing.assert_allclose(x4, want, atol=1e-5)
