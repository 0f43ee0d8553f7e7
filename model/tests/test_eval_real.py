import json

import numpy as np
import pytest
from PIL import Image
from tiny_models import random_hvar

from hvar.eval_real import SHEET_CROP, evaluate_real, main, real_lr_folder, report_markdown, sheet_row
from hvar.eval_sr import SRMethod
from hvar.sr import save_hvar

needs_niqe = pytest.mark.benchmark_data("metrics")


@pytest.fixture(scope="module")
def model():
    return random_hvar(spread=0.1)


@pytest.fixture
def real_root(tmp_path):
    """<root>/dev/Real/LR with two textured photos of 96x112 and one too small for NIQE even at x4."""
    folder = tmp_path / "dev/Real/LR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (h, w) in (("a", (96, 112)), ("b", (96, 112)), ("tiny", (20, 20))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return tmp_path


def test_a_dataset_name_resolves_to_its_lr_folder_under_the_data_root(real_root):
    assert real_lr_folder("Real", real_root) == real_root / "dev/Real/LR"
    assert real_lr_folder(str(real_root / "dev/Real"), real_root) == real_root / "dev/Real/LR"
    with pytest.raises(FileNotFoundError, match="no LR folder"):
        real_lr_folder("Missing", real_root)


@needs_niqe
def test_every_photo_gets_the_niqe_of_bicubic_and_of_each_model_at_each_scale(model, real_root):
    paths = sorted((real_root / "dev/Real/LR").glob("*.png"))
    ev = evaluate_real({"m": SRMethod(model)}, paths, (2, 4), progress=False)
    assert [im["name"] for im in ev["images"]] == ["a", "b", "tiny"]
    assert list(ev["images"][0]["niqe"]) == ["bicubic x2", "m x2", "bicubic x4", "m x4"]
    assert all(np.isfinite(v) for v in ev["images"][0]["niqe"].values())


@needs_niqe
def test_the_mean_leaves_out_photos_that_a_column_cannot_score(model, real_root):
    paths = sorted((real_root / "dev/Real/LR").glob("*.png"))
    ev = evaluate_real({"m": SRMethod(model)}, paths, (2,), progress=False)
    assert ev["images"][2]["niqe"]["m x2"] is None  # 40x40: no two whole 96x96 blocks
    assert ev["scored"] == 2
    assert ev["mean"]["m x2"] == pytest.approx(np.mean([im["niqe"]["m x2"] for im in ev["images"][:2]]))


def test_the_report_bolds_the_lowest_niqe_of_each_scale():
    ev = {
        "images": [{"name": "a", "size": [10, 20], "niqe": {"bicubic x4": 7.0, "m x4": 5.5}}],
        "mean": {"bicubic x4": 7.0, "m x4": 5.5},
        "scored": 1,
    }
    md = report_markdown(ev)
    assert "| a | 20x10 | 7.00 | **5.50** |" in md
    assert "| **mean** | | 7.00 | **5.50** |" in md


@needs_niqe
def test_cli_writes_json_markdown_and_a_contact_sheet_row_per_photo(model, real_root, tmp_path):
    save_hvar(model, tmp_path / "run")
    out = tmp_path / "out"
    main(["--model", f"m={tmp_path / 'run'}", "--dataset", "Real", "--data-root", str(real_root),
          "--scale", "4", "--json", str(out / "r.json"), "--md", str(out / "r.md"),
          "--sheet", str(out / "sheet.png"), "--sheet-photos", "2"])  # fmt: skip
    ev = json.loads((out / "r.json").read_text())
    assert ev["models"] == {"m": str(tmp_path / "run")} and ev["scored"] == 2
    assert "| **mean** |" in (out / "r.md").read_text()
    with Image.open(out / "sheet.png") as sheet:  # 2 rows of LR, bicubic and the model, crops at x4
        assert sheet.width > 3 * 4 * min(SHEET_CROP, 96) and sheet.height > 2 * 4 * min(SHEET_CROP, 96)


def test_a_grey_photo_gets_a_sheet_row_like_a_colour_one(model):
    lr = np.random.default_rng(2).integers(0, 256, (60, 64), dtype=np.uint8)
    outputs = {"m": SRMethod(model).outputs(lr)}
    grey, colour = sheet_row("g", lr, outputs), sheet_row("c", np.stack([lr] * 3, -1), outputs)
    assert grey.size == colour.size and grey.mode == "RGB"


def test_evaluation_hands_each_photos_outputs_on_so_the_sheet_runs_no_model_again(model, real_root):
    seen = []
    paths = sorted((real_root / "dev/Real/LR").glob("*.png"))

    def keep(name, lr, out):
        seen.append((name, lr.shape, out["m"][4].shape))

    evaluate_real({"m": SRMethod(model)}, paths, (), progress=False, on_photo=keep)
    assert [name for name, _, _ in seen] == ["a", "b", "tiny"]
    assert seen[2][1:] == ((20, 20, 3), (80, 80, 3))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-equals-sign"], "NAME=FOLDER"),
        (["--model", "a=/no/such/folder"], "NAME=FOLDER"),
        (["--model", "a=.?cleanup=1.5"], "cleanup= takes a number from 0 to 1"),
        (["--model", "a=.", "--model", "a=."], "names must differ"),
        (["--model", "a=.", "--sheet-photos", "0"], "--sheet-photos"),
        (["--model", "a=.", "--dataset", "Missing"], "no LR folder"),
    ],
)
def test_cli_refuses_bad_arguments_before_loading_any_model(args, message, real_root, capsys):
    with pytest.raises(SystemExit):
        main([*args, "--data-root", str(real_root)])
    assert message in capsys.readouterr().err


def test_a_jpeg_photos_quality_is_read_from_its_file_for_auto_as_the_runner_reads_it(tmp_path):
    seen = []

    class Recording:
        def outputs(self, lr, jpeg_quality=None):
            seen.append(jpeg_quality)
            return {1: lr, 2: lr, 4: lr}

    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(photo).save(tmp_path / "b.png")
    evaluate_real({"m": Recording()}, [tmp_path / "a.jpg", tmp_path / "b.png"], scales=(), progress=False)
    assert seen == [95, None]
