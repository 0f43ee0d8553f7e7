import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import random_hvar

from hvar import eval as protocol
from hvar import eval_sr
from hvar.config import FLOOR_PRESETS
from hvar.data import tensor_to_uint8, uint8_to_tensor
from hvar.eval_sr import LADDER, SRMethod, evaluate, ladder_rung, main, register, upscale, x1_ladder
from hvar.floor import Floor
from hvar.noise import smooth_field
from hvar.sr import save_hvar


@pytest.fixture(scope="module")
def model():
    return random_hvar(spread=0.1)


def test_one_tile_image_without_overlap_equals_one_model_pass(model):
    T = model.cfg.tokenizer.tile
    lr = np.random.default_rng(0).integers(0, 256, (T, T, 3), dtype=np.uint8)
    out = upscale(model, lr, overlap=0)
    with torch.no_grad():
        _, imgs = model.generate(uint8_to_tensor(lr)[None])
    for s, img in zip((1, 2, 4), imgs, strict=True):
        assert np.array_equal(out[s], tensor_to_uint8(img[0]))


@pytest.mark.parametrize("hw", [(11, 13), (37, 20)])
def test_any_lr_size_gives_x1_x2_x4_of_matching_sizes(model, hw):
    lr = np.random.default_rng(1).integers(0, 256, (*hw, 3), dtype=np.uint8)
    out = upscale(model, lr)
    assert {s: out[s].shape for s in out} == {s: (hw[0] * s, hw[1] * s, 3) for s in (1, 2, 4)}


def test_model_plugs_into_the_protocol_as_a_method(model, photo_root):
    register(model)
    try:
        r = protocol.evaluate_dataset(
            photo_root / "dev/Set14/HR", 2, protocol.METHODS["hvar"], progress=False
        )
        assert np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1
    finally:
        protocol.METHODS.pop("hvar")


def test_evaluation_scores_sr_next_to_bicubic_and_x1_next_to_the_input(model, photo_root, tmp_path):
    ev = evaluate(model, ("Set14",), (4,), ("bicubic",), crops_dir=tmp_path / "crops")
    (r,) = ev["results"]
    assert set(r) >= {"sr", "bicubic", "x1", "input", "images"} and r["scale"] == 4
    assert r["input"]["psnr"] is None and r["input"]["ssim"] == pytest.approx(1.0)  # bicubic LR is clean
    assert r["bicubic"]["psnr"] > 0 and r["x1"]["psnr"] > 0
    assert len(list((tmp_path / "crops").glob("Set14_*_x4_bicubic.png"))) == 1


def test_cli_writes_markdown_and_json(model, photo_root, tmp_path):
    save_hvar(model, tmp_path / "run")
    main(["--run", str(tmp_path / "run"), "--dataset", "Set14", "--scale", "2", "--degradation", "realistic",
          "--md", str(tmp_path / "sr.md"), "--json", str(tmp_path / "sr.json")])  # fmt: skip
    assert "| Set14 | realistic | x2 |" in (tmp_path / "sr.md").read_text()
    assert json.loads((tmp_path / "sr.json").read_text())["results"][0]["input"]["psnr"] > 0


def test_cli_scores_jpeg_compressed_input_against_the_clean_lr(model, photo_root, tmp_path):
    save_hvar(model, tmp_path / "run")
    ev = main(
        ["--run", str(tmp_path / "run"), "--dataset", "Set14", "--scale", "2", "--degradation", "jpeg50"]
    )
    (r,) = ev["results"]
    assert r["degradation"] == "jpeg50" and 20 < r["input"]["psnr"] < 60  # the JPEG's loss, finite


def test_cli_refuses_an_unknown_degradation_with_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--run", str(tmp_path / "run"), "--degradation", "jpeg0"])
    assert "unknown degradation 'jpeg0'" in capsys.readouterr().err


def test_cli_adds_the_x1_ladder_on_request(model, photo_root, tmp_path):
    save_hvar(model, tmp_path / "run")
    ev = main(["--run", str(tmp_path / "run"), "--dataset", "Set14", "--scale", "2",
               "--degradation", "bicubic", "--ladder", "--md", str(tmp_path / "sr.md")])  # fmt: skip
    assert set(ev["x1_ladder"]["Set14"]) == {"clean_psnr", *(f"gain_{r}" for r in LADDER)}
    assert "| Set14 | " in (tmp_path / "sr.md").read_text().split("acceptance ladder")[1]


def test_the_cli_ladder_keeps_every_image_and_its_worst_is_the_minimum(model, photo_root, tmp_path):
    save_hvar(model, tmp_path / "run")
    ev = main(["--run", str(tmp_path / "run"), "--dataset", "Set5", "--scale", "2",
               "--degradation", "bicubic", "--ladder", "--md", str(tmp_path / "sr.md")])  # fmt: skip
    per_image = ev["x1_ladder_per_image"]["Set5"]
    assert sorted(per_image) == ["img0", "img1"]
    for key, worst in ev["x1_ladder"]["Set5"].items():
        assert worst == min(row[key] for row in per_image.values())
    assert f"of {len(per_image)})" in (tmp_path / "sr.md").read_text().split("Per image")[1]


def test_the_cli_ladder_refuses_a_set_without_colour_images_before_evaluating(model, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "grey" / "HR"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(folder / "flat.png")
    save_hvar(model, tmp_path / "run")
    with pytest.raises(SystemExit):
        main(["--run", str(tmp_path / "run"), "--dataset", str(folder), "--scale", "2",
              "--degradation", "bicubic", "--ladder", "--json", str(tmp_path / "ev.json")])  # fmt: skip
    assert "no colour image" in capsys.readouterr().err
    assert not (tmp_path / "ev.json").exists()


def test_grey_images_are_scored_on_grey_like_the_protocol(model, photo_root, tmp_path):
    from PIL import Image

    folder = tmp_path / "grey" / "HR"
    folder.mkdir(parents=True)
    rgb = np.asarray(Image.open(photo_root / "dev/Set14/HR/img0.png"))
    Image.fromarray(rgb[..., 1]).save(folder / "g.png")  # mode L
    ev = evaluate(model, (str(folder),), (4,), ("bicubic",), crops_dir=tmp_path / "crops", progress=False)
    want = protocol.evaluate_dataset(folder, 4, protocol.METHODS["bicubic"], progress=False)
    assert ev["results"][0]["bicubic"]["psnr"] == pytest.approx(want["psnr"], abs=1e-9)
    assert list((tmp_path / "crops").glob("*.png"))


def test_compare_puts_two_evaluations_in_one_table_with_the_best_of_each_row_in_bold(photo_root, tmp_path):
    def result(sr: float) -> dict:
        row = {"dataset": "Set5", "degradation": "realistic", "scale": 4,
               "bicubic": {"psnr": 22.0, "ssim": 0.5}, "sr": {"psnr": sr, "ssim": 0.6},
               "input": {"psnr": 24.0, "ssim": 0.7}, "x1": {"psnr": 25.0, "ssim": 0.8}}  # fmt: skip
        return {"results": [row]}

    (tmp_path / "a.json").write_text(json.dumps(result(23.0)))
    (tmp_path / "b.json").write_text(json.dumps(result(21.0)))
    a, b, md = (str(tmp_path / f) for f in ("a.json", "b.json", "t.md"))
    main(["--compare", f"DPO={a}", f"no DPO={b}", "--md", md])
    head, _, row = (tmp_path / "t.md").read_text().splitlines()
    assert head.split(" | ")[3:6] == ["bicubic", "DPO x_s", "no DPO x_s"]
    assert "| **23.00 / 0.6000** | 21.00 / 0.6000 |" in row


def test_compare_refuses_a_missing_file_with_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--compare", f"a={tmp_path / 'nope.json'}"])
    assert "no such file" in capsys.readouterr().err


def test_every_rung_of_the_ladder_damages_the_image_more_than_the_one_before_of_its_kind():
    clean = np.random.default_rng(0).integers(60, 200, (48, 48, 3), dtype=np.uint8)
    clean = np.asarray(Image.fromarray(clean).resize((96, 96), Image.BICUBIC))  # some smooth content
    errors = {}
    for rung in LADDER:
        damaged = ladder_rung(clean, rung, np.random.default_rng(0))
        errors[rung] = np.mean((damaged.astype(float) - clean) ** 2)
    assert all(e > 0 for e in errors.values())
    for weaker, stronger in (("jpeg90", "jpeg30"), ("noise3", "noise25"), ("blur0.8", "blur1.5")):
        assert errors[weaker] < errors[stronger]


def test_an_x1_that_returns_its_input_gains_nothing_on_any_rung(photo_root):
    torch.manual_seed(0)
    floor = Floor(FLOOR_PRESETS["tiny"]).eval()
    with torch.no_grad():  # x1 = input + a correction head that is zero
        floor.heads["x1"].weight.zero_()
        floor.heads["x1"].bias.zero_()
    scores = x1_ladder(floor, "Set5", ("jpeg90", "noise10"))
    assert scores == {"clean_psnr": float("inf"), "gain_jpeg90": 0.0, "gain_noise10": 0.0}


def test_a_clean_up_strength_outside_0_to_1_is_refused_before_any_work(capsys):
    with pytest.raises(SystemExit):
        main(["--run", "any", "--cleanup", "1.5"])
    assert "from 0 to 1" in capsys.readouterr().err


def test_auto_cleans_each_image_at_the_strength_its_noise_calls_for(monkeypatch):
    seen = []
    monkeypatch.setattr(eval_sr, "upscale", lambda model, rgb, *a, cleanup, **k: seen.append(cleanup) or {})
    method = SRMethod(torch.nn.Identity(), cleanup="auto")
    rng = np.random.default_rng(0)
    smooth = smooth_field(64, 64)
    for image in (smooth, smooth + rng.normal(0, 20, smooth.shape)):
        method.outputs(np.clip(np.round(image), 0, 255).astype(np.uint8))
    assert seen == [0.75, 1.0]
