"""The benchmark protocol: published bicubic baselines, the CLI, and the method plug-in."""

import json

import numpy as np
import pytest

from hvar.eval import bicubic_method, evaluate_dataset, evaluate_image, main, resolve_dataset
from hvar.imresize import imresize_uint8
from hvar.paths import data_root

# Bicubic, Y channel, shave = scale (SRCNN/VDSR/EDSR tables).
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 4): (26.00, 0.7027),
}


needs_datasets = pytest.mark.benchmark_data("datasets")


@pytest.fixture(scope="module")
def root():
    return data_root()


@needs_datasets
@pytest.mark.parametrize("dataset,scale", list(PUBLISHED))
def test_bicubic_matches_published_baseline(root, dataset, scale):
    _, folder = resolve_dataset(dataset, root)
    r = evaluate_dataset(folder, scale, bicubic_method, progress=False)
    psnr, ssim = PUBLISHED[(dataset, scale)]
    assert abs(r["psnr"] - psnr) <= 0.02, r["psnr"]
    assert abs(r["ssim"] - ssim) <= 0.002, r["ssim"]


@needs_datasets
def test_cli_prints_markdown_and_writes_json_and_md(root, tmp_path, capsys):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["--dataset", "Set5", "--scale", "4", "--data-root", str(root), "--no-progress"]
    main([*argv, "--json", str(out_json), "--md", str(out_md)])
    printed = capsys.readouterr().out
    assert "| Set5 | x4 | 5 | 28.4" in printed
    assert out_md.read_text() == printed
    report = json.loads(out_json.read_text())
    assert report["method"] == "bicubic" and report["degradation"] == "bicubic"
    (res,) = report["results"]
    assert res["dataset"] == "Set5" and res["scale"] == 4
    assert [i["name"] for i in res["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
    assert res["psnr"] == pytest.approx(np.mean([i["psnr"] for i in res["images"]]))


@needs_datasets
def test_dataset_can_be_given_as_a_folder(root):
    name, folder = resolve_dataset(str(root / "dev" / "Set5" / "HR"))
    assert name == "Set5" and folder == root / "dev" / "Set5" / "HR"


def test_unknown_dataset_fails_with_a_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match="HVAR_DATA_ROOT"):
        resolve_dataset("NoSuchSet", tmp_path)


@needs_datasets
def test_realistic_degradation_is_reproducible_per_image(root):
    _, folder = resolve_dataset("Set5", root)
    a = evaluate_dataset(folder, 4, bicubic_method, "realistic", seed=0, progress=False)
    b = evaluate_dataset(folder, 4, bicubic_method, "realistic", seed=0, progress=False)
    c = evaluate_dataset(folder, 4, bicubic_method, "realistic", seed=1, progress=False)
    assert a == b
    assert a["psnr"] != c["psnr"]
    assert a["psnr"] < 28.42  # harder than the bicubic LR for a bicubic upscaler


def test_a_method_receives_the_lr_and_is_scored_against_the_modcropped_hr():
    hr = np.random.default_rng(0).integers(0, 256, (50, 42, 3), dtype=np.uint8)
    seen = []

    def method(lr, scale):
        seen.append(lr.shape)
        return imresize_uint8(lr, scale)

    psnr, ssim = evaluate_image(hr, 4, method)
    assert seen == [(12, 10, 3)]
    assert np.isfinite(psnr) and 0 < ssim < 1


def test_a_method_returning_the_wrong_shape_is_rejected():
    hr = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="expected uint8"):
        evaluate_image(hr, 2, lambda lr, s: lr)
