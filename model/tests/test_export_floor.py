"""The floor's ONNX export: one input, the contract's outputs, what PyTorch computes (issue: Model 2.0)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from hvar import acceptance, export_floor
from hvar import export as ex
from hvar.config import FLOOR_PRESETS
from hvar.contract import IMAGES
from hvar.export_floor import verify
from hvar.floor import Floor, load_floor, save_floor

REPO = Path(__file__).resolve().parents[2]
FLOORS = [
    p.parent
    for p in sorted((REPO / "gpu-runner" / "models").glob("*/manifest.json"))
    if json.loads(p.read_text())["tokens"] == 0
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, photo_root_module):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("floor") / "run"
    save_floor(Floor(FLOOR_PRESETS["tiny"]), run)
    out = run.parent / "models" / "floor-tiny"
    ex.main(["--run", str(run), "--out", str(out), "--version", "0.1.0", "--tile", "24", "--no-acceptance"])
    return run, out


@pytest.fixture(scope="module")
def photo_root_module(tmp_path_factory):
    """Set5-like HR photos for the parity tiles (the export cuts them from Set5)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    (root / "dev" / "Set5" / "HR").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(
            root / f"dev/Set5/HR/{i}.png"
        )
    mp = pytest.MonkeyPatch()
    mp.setenv("HVAR_DATA_ROOT", str(root))
    yield root
    mp.undo()


def test_the_graph_takes_lr_only_and_gives_the_contracts_static_shapes(exported):
    _, out = exported
    graph = onnx.load(str(out / "model.onnx"))
    assert [i.name for i in graph.graph.input] == ["lr"]
    shapes = {
        o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in graph.graph.output
    }
    assert shapes == {"x1": ["N", 3, 24, 24], "x2": ["N", 3, 48, 48], "x4": ["N", 3, 96, 96]}


def test_the_manifest_says_the_model_generates_nothing(exported):
    _, out = exported
    m = json.loads((out / "manifest.json").read_text())
    assert (m["id"], m["version"], m["tile"], m["tokens"], m["precision"]) == (
        "floor-tiny",
        "0.1.0",
        24,
        0,
        "fp32",
    )
    assert m["sha256"] == ex.sha256(out / "model.onnx") and m["overlap"] * 2 <= m["tile"]


@pytest.fixture(scope="module")
def exported_fitted(exported):
    run, out = exported
    fitted = out.parent / "floor-tiny-fitted"
    ex.main(["--run", str(run), "--out", str(fitted), "--tile", "32", "--tile-step", "8", "--no-acceptance"])
    return run, fitted


def test_a_graph_exported_with_a_tile_step_takes_any_sides_and_its_manifest_says_the_step(exported_fitted):
    _, out = exported_fitted
    graph = onnx.load(str(out / "model.onnx"))
    sides = {
        v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
        for v in (*graph.graph.input, *graph.graph.output)
    }
    assert sides == {
        "lr": ["N", 3, "H", "W"],
        "x1": ["N", 3, "H", "W"],
        "x2": ["N", 3, "2H", "2W"],
        "x4": ["N", 3, "4H", "4W"],
    }
    m = json.loads((out / "manifest.json").read_text())
    assert (m["tile"], m["tileStep"]) == (32, 8)


def test_a_fitted_graph_computes_what_pytorch_computes_on_an_oblong_tile(exported_fitted):
    run, out = exported_fitted
    lr = np.random.default_rng(1).random((2, 3, 16, 24), dtype=np.float32)
    assert min(verify(load_floor(run), out / "model.onnx", lr).values()) > 60
    parity = ex.load_parity(out / "parity.safetensors")
    assert parity["lr"].shape[2:] == (16, 8)  # the parity file holds a fitted, oblong tile (half x 3/8)


@pytest.fixture(scope="module")
def exported_cascade(exported):
    """A two-stage floor (a restorer, then an upscaler that sees its x1), which takes a clean-up strength."""
    run, _ = exported
    torch.manual_seed(0)
    cascade = run.parent / "cascade"
    save_floor(Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=2)), cascade)
    out = run.parent / "models" / "floor-cascade"
    ex.main(["--run", str(cascade), "--out", str(out), "--version", "0.1", "--tile", "24", "--no-acceptance"])
    return cascade, out


def test_a_two_stage_floor_takes_a_clean_up_strength_and_its_manifest_says_so(exported_cascade):
    _, out = exported_cascade
    assert [i.name for i in onnx.load(str(out / "model.onnx")).graph.input] == ["lr", "cleanup"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cleanup"] is True
    assert min(v for k, v in manifest["verification"]["psnr_vs_pytorch"].items() if "cleanup 0.5" in k) > 60


def test_a_one_stage_floor_has_no_clean_up_setting(exported):
    _, out = exported
    assert "cleanup" not in json.loads((out / "manifest.json").read_text())


def test_at_clean_up_0_x1_is_the_input_and_the_upscaler_sees_it_as_it_is(exported_cascade):
    run, out = exported_cascade
    lr = np.random.default_rng(1).random((2, 3, 24, 24), dtype=np.float32)
    session = ex.ort_session(out / "model.onnx")
    x1, _, x4 = session.run(list(IMAGES), {"lr": lr, "cleanup": np.array([0.0], np.float32)})
    assert np.abs(x1 - lr).max() < 1e-6
    upscaler = load_floor(run).upscaler
    with torch.no_grad():
        _, want = upscaler.upsample(upscaler.features(torch.from_numpy(lr)))
    assert np.abs(x4 - want.clamp(0, 1).numpy()).max() < 1e-4
    full, _, _ = session.run(list(IMAGES), {"lr": lr, "cleanup": np.array([1.0], np.float32)})
    assert np.abs(full - lr).max() > 1e-3  # the restorer does change it at full strength


def test_a_tile_step_that_does_not_divide_the_tile_is_refused(exported, tmp_path):
    run, _ = exported
    with pytest.raises(SystemExit, match="not a multiple"):
        ex.main(["--run", str(run), "--out", str(tmp_path / "m"), "--tile", "24", "--tile-step", "16",
                 "--no-acceptance"])  # fmt: skip
    assert not (tmp_path / "m").exists()


def test_the_parity_file_replays_in_onnxruntime(exported):
    _, out = exported
    parity = ex.load_parity(out / "parity.safetensors")
    got = ex.ort_session(out / "model.onnx").run(list(IMAGES), {"lr": parity["lr"]})
    assert all(ex.psnr01(g, parity[f"greedy.{n}"]) > 60 for n, g in zip(IMAGES, got, strict=True))


def test_a_graph_off_by_a_little_fails_verification(exported, tmp_path):
    run, out = exported
    model = load_floor(run)
    with torch.no_grad():
        model.heads["x4"].bias.add_(0.01)
    parity = ex.load_parity(out / "parity.safetensors")
    assert verify(model, out / "model.onnx", parity["lr"])["x4"] < 60


def test_a_refused_export_replaces_nothing_in_the_model_folder(exported, monkeypatch):
    run, out = exported
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(export_floor, "MIN_PSNR", float("inf"))  # as if onnxruntime disagreed
    with pytest.raises(SystemExit, match="left as it was"):
        ex.main(
            ["--run", str(run), "--out", str(out), "--version", "0.2.0", "--tile", "24", "--no-acceptance"]
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.skipif(acceptance.available() is not None, reason=f"acceptance suite: {acceptance.available()}")
def test_an_export_whose_model_fails_the_acceptance_checks_leaves_the_folder_as_it_was(exported):
    run, out = exported  # a tiny floor with random weights: its x2 and x4 are noise
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit, match="fails acceptance checks") as refused:
        ex.main(["--run", str(run), "--out", str(out), "--version", "0.3.0", "--tile", "24"])
    assert "keeps a flat mid-grey field within 1 level of itself" in str(refused.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("folder", FLOORS, ids=[p.name for p in FLOORS])
def test_a_shipped_floor_passed_the_acceptance_checks_when_it_was_exported(folder):
    verdict = json.loads((folder / "manifest.json").read_text())["acceptance"]
    assert not verdict.get("skipped") and verdict["failed"] == [] and verdict["passed"]


@pytest.mark.parametrize("folder", FLOORS, ids=[p.name for p in FLOORS])
def test_a_shipped_floor_reproduces_pytorchs_outputs(folder):
    parity = ex.load_parity(folder / "parity.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    full = {"cleanup": np.ones(1, np.float32)} if manifest.get("cleanup") else {}  # as the parity file
    got = ex.ort_session(folder / "model.onnx", threads=2).run(list(IMAGES), {"lr": parity["lr"]} | full)
    assert all(ex.psnr01(g, parity[f"greedy.{n}"]) > 60 for n, g in zip(IMAGES, got, strict=True))


def test_the_before_after_figure_shows_each_model_for_clean_and_degraded_input(exported, tmp_path):
    from PIL import Image

    from hvar.figure import main as figure

    _, out = exported
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(photo)
    figure(
        ["--image", str(photo), "--model", f"tiny={out}", "--out", str(tmp_path / "f.png"), "--crop", "64"]
    )
    w, h = Image.open(tmp_path / "f.png").size
    assert (w, h) == (4 * 64 + 3 * 4, 2 * (64 + 14) + 4)  # input, bicubic, tiny, original; two rows


def test_the_figure_draws_one_row_per_degradation_asked_for(exported, tmp_path):
    from PIL import Image

    from hvar.figure import main as figure

    _, out = exported
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(photo)
    figure(["--image", str(photo), "--model", f"tiny={out}", "--out", str(tmp_path / "f.png"), "--crop", "64",
            "--degradation", "bicubic", "jpeg60", "realistic"])  # fmt: skip
    assert Image.open(tmp_path / "f.png").size[1] == 3 * (64 + 14) + 2 * 4


def test_the_figure_at_scale_2_shows_each_models_x2(exported, tmp_path):
    from PIL import Image

    from hvar.degrade import bicubic_lr
    from hvar.eval_sr import SRMethod, load_model
    from hvar.figure import main as figure

    _, out = exported
    photo = tmp_path / "photo.png"
    hr = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(hr).save(photo)
    figure(["--image", str(photo), "--model", f"tiny={out}", "--out", str(tmp_path / "f.png"), "--crop", "64",
            "--degradation", "bicubic", "--scale", "2"])  # fmt: skip
    shown = np.asarray(Image.open(tmp_path / "f.png"))[14 : 14 + 64, 2 * (64 + 4) : 2 * (64 + 4) + 64]
    x2 = SRMethod(load_model(out)).outputs(bicubic_lr(hr, 2))[2]
    assert np.array_equal(shown, x2[16:80, 16:80])  # the centre 64 px of the model's x2


def test_the_figure_refuses_a_model_folder_that_does_not_exist(tmp_path, capsys):
    from hvar.figure import main as figure

    with pytest.raises(SystemExit):
        figure(
            [
                "--image",
                str(tmp_path / "x.png"),
                "--model",
                "a=/nonexistent",
                "--out",
                str(tmp_path / "f.png"),
            ]
        )
    assert "NAME=FOLDER" in capsys.readouterr().err


def test_the_figure_reads_a_clean_up_strength_after_a_models_folder():
    from hvar.figure import folder_and_cleanup

    assert folder_and_cleanup("models/hvar?cleanup=0.5") == ("models/hvar", 0.5)
    assert folder_and_cleanup("models/hvar") == ("models/hvar", 1.0)
    assert folder_and_cleanup("models/hvar?cleanup=auto") == ("models/hvar", "auto")
    assert folder_and_cleanup("models/hvar?cleanup=2")[1] is None
    assert folder_and_cleanup("models/hvar?cleanup=much")[1] is None


def test_the_figure_shows_a_two_stage_floor_at_each_clean_up_strength_asked_for(exported_cascade, tmp_path):
    from PIL import Image

    from hvar.figure import main as figure

    _, out = exported_cascade
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(photo)
    models = ["--model", f"full={out}", "--model", f"none={out}?cleanup=0"]
    figure(["--image", str(photo), *models, "--out", str(tmp_path / "f.png"), "--crop", "32", "--scale", "2"])
    assert Image.open(tmp_path / "f.png").width > 5 * 32  # LR, bicubic, two strengths, original
