"""The detail stage: it starts as the tokenizer's decoder on the floor's output, trains only its decoder,
and its runs resume and evaluate."""

import argparse
import json

import numpy as np
import pytest
import torch
from tiny_models import random_hvar

from hvar.config import FLOOR_PRESETS, get_config
from hvar.detail import Detail, DetailDecoder, load_detail, save_detail
from hvar.eval_detail import evaluate, figure, source_name
from hvar.floor import Floor, save_floor
from hvar.pairs import Pairs, build
from hvar.tokenizer import HIT, save_hit
from hvar.train_detail import detail_loss, main
from hvar.train_floor import to_tensors


def tiny_parts(seed: int = 0) -> tuple[Floor, HIT]:
    torch.manual_seed(seed)
    tokenizer = HIT(get_config("tiny", lr_guided_decoder=True).tokenizer)
    torch.nn.init.normal_(tokenizer.quantizer.embedding.weight, std=0.5)  # tokens that differ
    return Floor(FLOOR_PRESETS["tiny"]).eval(), tokenizer.eval()


def moved(model: Detail) -> Detail:
    """The same stage with every decoder weight nudged away from the identity start."""
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture
def pairs_dir(photo_root, tmp_path):
    return build(tmp_path / "pairs", count=8, lr_side=24, workers=1)


@pytest.fixture
def start(tmp_path):
    floor, tokenizer = tiny_parts()
    save_floor(floor, tmp_path / "floor")
    save_hit(tokenizer, get_config("tiny", lr_guided_decoder=True), tmp_path / "tok")
    return tmp_path


def test_a_new_stage_decodes_x1_as_the_tokenizer_does_with_the_floors_x1_as_its_guide():
    floor, tokenizer = tiny_parts()
    with torch.no_grad():  # a trained-looking decoder: its zero-initialised LR guides are not zero
        for p in tokenizer.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model = Detail(floor, tokenizer)
    lr = torch.rand(2, 3, 16, 16)
    guides = model.floor_outputs(lr)
    idx = model.tokens(torch.rand(2, 3, 64, 64) * 2 - 1)
    ours = model.decode(idx, guides)[0]
    theirs = model.tokenizer.decoder(
        model.tokenizer.post_quant_conv(model.tokenizer.idx_to_fhats(idx)[0]), guides[0]
    )
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_decoder_starts_from_the_tokenizers_decoder_and_keeps_none_of_the_floor():
    _, tokenizer = tiny_parts()
    dec = DetailDecoder.from_hit(tokenizer)
    hit_state = tokenizer.decoder.state_dict()
    for k, v in dec.state_dict().items():
        assert torch.equal(v, torch.zeros_like(v) if k.startswith("keep") else hit_state[k]), k


def test_different_tokens_give_different_images_once_the_decoder_has_learned():
    model = moved(Detail(*tiny_parts()))
    lr = torch.rand(1, 3, 16, 16)
    guides = model.floor_outputs(lr)
    a = model.decode(model.tokens(torch.rand(1, 3, 64, 64) * 2 - 1), guides)[2]
    b = model.decode(model.tokens(torch.rand(1, 3, 64, 64) * 2 - 1), guides)[2]
    assert (a - b).abs().max() > 1e-3


def test_a_training_step_moves_only_the_decoder(pairs_dir):
    model = moved(Detail(*tiny_parts())).train()  # moved: every decoder weight gets a gradient
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    opt = torch.optim.SGD(model.decoder.parameters(), lr=0.1)
    loss, parts = detail_loss(model, batch)
    loss.backward()
    opt.step()
    assert set(parts) == {"x1", "x2", "x4"} and loss.item() > 0
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]) != k.startswith("decoder."), k


def test_a_saved_stage_loads_with_the_same_outputs(tmp_path):
    model = moved(Detail(*tiny_parts()))
    save_detail(model, tmp_path / "run")
    loaded = load_detail(tmp_path / "run")
    lr = torch.rand(1, 3, 16, 16)
    guides = model.floor_outputs(lr)
    idx = model.tokens(torch.rand(1, 3, 64, 64) * 2 - 1)
    for a, b in zip(model.decode(idx, guides), loaded.decode(idx, guides), strict=True):
        assert torch.equal(a, b)


def test_the_evaluation_scores_every_source_and_the_floor_alone_whatever_the_decoder(photo_root):
    sources = ("floor-alone", "hr", "floor")
    a = evaluate(Detail(*tiny_parts()), ("Set5",), ("bicubic",), sources, with_niqe=False)["Set5"]["bicubic"]
    b = evaluate(moved(Detail(*tiny_parts())), ("Set5",), ("bicubic",), sources, with_niqe=False)
    b = b["Set5"]["bicubic"]
    assert all(set(a[s]) == {"x2_psnr", "x2_ssim", "x4_psnr", "x4_ssim"} for s in sources)
    assert a["floor-alone"] == b["floor-alone"] and a["hr"] != b["hr"]


def test_a_run_trains_resumes_and_records_the_oracle(pairs_dir, start):
    out = start / "run"
    common = ["--out", str(out), "--pairs", str(pairs_dir), "--batch-size", "2", "--eval-every", "2"]
    main([*common, "--tokenizer", str(start / "tok"), "--floor", str(start / "floor"), "--steps", "2"])
    main([*common, "--steps", "4", "--resume"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((out / "state.json").read_text())["step"] == 4
    assert [r["step"] for r in rows if "oracle_x4" in r] == [0, 2, 4]
    assert (out / "decoder.safetensors").exists() and (out / "curves.png").exists()


def test_a_run_folder_is_never_overwritten(pairs_dir, start):
    (start / "run").mkdir()
    with pytest.raises(SystemExit):
        main(["--out", str(start / "run"), "--pairs", str(pairs_dir), "--tokenizer", str(start / "tok"),
              "--floor", str(start / "floor"), "--steps", "1"])  # fmt: skip
    assert not any((start / "run").iterdir())


def test_the_figure_shows_the_lr_every_source_and_the_original_in_two_rows(photo_root, tmp_path):
    from PIL import Image

    out = tmp_path / "figure.png"
    photo = photo_root / "train" / "img0.png"
    figure(Detail(*tiny_parts()), None, photo, out, ("floor-alone", "hr"), crop=64)
    im = Image.open(out)
    assert im.width == 4 * 64 + 3 * 4 and im.height == 2 * (64 + 14) + 4  # 4 panels, 2 rows with labels


def test_a_transformers_greedy_tokens_give_the_same_picture_twice_and_sampling_another(photo_root):
    transformer = random_hvar(spread=0.3)
    torch.manual_seed(0)
    model = moved(Detail(Floor(FLOOR_PRESETS["tiny"]), transformer.tokenizer))
    sources = ("greedy", "sampled")
    a = evaluate(model, ("Set5",), ("bicubic",), sources, transformer, with_niqe=False)["Set5"]["bicubic"]
    b = evaluate(model, ("Set5",), ("bicubic",), sources, transformer, with_niqe=False)["Set5"]["bicubic"]
    assert a == b and a["greedy"] != a["sampled"]


def test_gated_tokens_the_transformer_is_never_sure_enough_of_give_the_floors_own_tokens_picture(photo_root):
    transformer = random_hvar(spread=0.3)
    torch.manual_seed(0)
    model = moved(Detail(Floor(FLOOR_PRESETS["tiny"]), transformer.tokenizer))
    sources = ("floor", "gated:1", "gated:0", "greedy")
    r = evaluate(model, ("Set5",), ("bicubic",), sources, transformer, with_niqe=False)["Set5"]["bicubic"]
    assert r["gated:1"] == r["floor"] and r["gated:0"] == r["greedy"] and r["floor"] != r["greedy"]


@pytest.mark.parametrize("text", ["gated", "gated:", "gated:1.5", "gated:-1", "gated:x", "oracle"])
def test_a_token_source_is_one_of_the_known_ones_or_gated_at_a_confidence(text):
    assert source_name("gated:0.9") == "gated:0.9" and source_name("hr") == "hr"
    with pytest.raises(argparse.ArgumentTypeError):
        source_name(text)


def test_calibration_counts_fewer_tokens_as_sure_at_a_higher_confidence_and_all_at_zero(photo_root):
    from hvar.eval_detail import calibration

    transformer = random_hvar(spread=0.3)
    model = Detail(Floor(FLOOR_PRESETS["tiny"]), transformer.tokenizer)
    r = calibration(model, transformer, "Set5", "bicubic", (0.0, 0.01, 0.05, 1.01))
    shares = [r["by_confidence"][c]["share"] for c in (0.0, 0.01, 0.05, 1.01)]
    assert shares[0] == 1 and shares == sorted(shares, reverse=True) and shares[-1] == 0
    assert r["by_confidence"][0.0]["transformer"] == r["overall"]["transformer"]
    assert r["by_confidence"][1.01]["floor"] is None and 0 <= r["overall"]["floor"] <= 1


def test_a_transformer_conditioned_on_the_floors_x4_is_fed_the_x4_tile_and_one_on_x1_the_x1_tile(photo_root):
    on_x1, on_x4 = random_hvar(spread=0.3, condition="x1"), random_hvar(spread=0.3, condition="x4")
    model = moved(Detail(Floor(FLOOR_PRESETS["tiny"]), on_x1.tokenizer))
    a = evaluate(model, ("Set5",), ("bicubic",), ("greedy",), on_x1, with_niqe=False)["Set5"]["bicubic"]
    b = evaluate(model, ("Set5",), ("bicubic",), ("greedy",), on_x4, with_niqe=False)["Set5"]["bicubic"]
    assert a != b  # the same weights (seed 0) read another condition
