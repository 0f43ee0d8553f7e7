"""The detail stage: it starts as the tokenizer's decoder on the floor's output, trains only its decoder,
and its runs resume and evaluate."""

import argparse
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_models import random_hvar

from hvar.config import FLOOR_PRESETS, get_config
from hvar.detail import Detail, DetailDecoder, centre_tiles, load_detail, save_detail
from hvar.eval_detail import evaluate, figure, source_name
from hvar.floor import Floor, save_floor
from hvar.pairs import Pairs, build
from hvar.tokenizer import HIT, save_hit
from hvar.train_detail import (
    RESIDUAL_GAIN,
    better_check,
    clean_lr,
    critic_step,
    detail_loss,
    equivariance_l1,
    low_passed,
    main,
    patch_spectrum_l1,
)
from hvar.train_floor import dihedral, to_tensors


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
    loss, parts, _, _ = detail_loss(model, batch)
    loss.backward()
    opt.step()
    assert set(parts) == {"x1", "x2", "x4"} and loss.item() > 0
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]) != k.startswith("decoder."), k


def plain_parts() -> tuple[Floor, HIT]:
    """tiny_parts with the plain VAR quantizer (the ablation): the same weights, one x4 latent."""
    floor, hit = tiny_parts()
    plain = HIT(get_config("tiny", lr_guided_decoder=True, hierarchical=False).tokenizer)
    plain.load_state_dict(hit.state_dict())
    return floor, plain.eval()


def test_the_plain_tokenizers_stage_decodes_x4_alone_and_gives_the_floors_x1_and_x2_back():
    model = moved(Detail(*plain_parts()))
    guides = model.floor_outputs(torch.rand(2, 3, 16, 16))
    x1, x2, x4 = model.decode(model.tokens(torch.rand(2, 3, 64, 64) * 2 - 1), guides)
    assert model.decoded == (4,) and Detail(*tiny_parts()).decoded == (1, 2, 4)
    assert torch.equal(x1, guides[0]) and torch.equal(x2, guides[1])
    assert x4.shape == guides[2].shape and (x4 - guides[2]).abs().max() > 1e-3


def test_the_plain_tokenizers_stage_trains_on_x4_alone(pairs_dir):
    model = moved(Detail(*plain_parts())).train()
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    loss, parts, fake, _ = detail_loss(model, batch)
    loss.backward()
    assert set(parts) == {"x4"} and loss.item() == pytest.approx(parts["x4"])
    assert fake.shape[-1] == 64 and all(p.grad is not None for p in model.decoder.parameters())


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
    assert all(set(a[s]) == {"x2_psnr", "x2_ssim", "x4_psnr", "x4_ssim", "x4_streak"} for s in sources)
    assert a["floor-alone"] == b["floor-alone"] and a["hr"] != b["hr"]
    assert a["floor-alone"]["x4_streak"] == 0.0  # the floor adds nothing to itself


def test_a_run_trains_resumes_and_records_the_oracle(pairs_dir, start):
    out = start / "run"
    common = ["--out", str(out), "--pairs", str(pairs_dir), "--batch-size", "2", "--eval-every", "2"]
    main([*common, "--tokenizer", str(start / "tok"), "--floor", str(start / "floor"), "--steps", "2"])
    main([*common, "--steps", "4", "--resume"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((out / "state.json").read_text())["step"] == 4
    checks = [r["step"] for r in rows if {"oracle_x4", "own_streak", "clean_own_x4"} <= set(r)]
    assert checks == [0, 2, 4]
    assert (out / "decoder.safetensors").exists() and (out / "curves.png").exists()


def test_tiles_marked_from_floor_are_decoded_from_the_floors_own_tokens_and_the_rest_from_the_hrs(pairs_dir):
    model = moved(Detail(*tiny_parts()))
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    with torch.no_grad():
        _, _, from_hr, _ = detail_loss(model, batch)
        _, _, mixed, _ = detail_loss(model, batch, torch.tensor([False, True]))
        _, _, from_floor, _ = detail_loss(model, batch, torch.tensor([True, True]))
    assert torch.equal(mixed[0], from_hr[0]) and torch.equal(mixed[1], from_floor[1])
    assert not torch.equal(from_hr[1], from_floor[1])


def test_the_critic_is_shown_what_the_hr_and_the_decoded_x4_add_to_the_floors_x4(pairs_dir):
    model = moved(Detail(*tiny_parts()))
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    with torch.no_grad():
        _, _, fake, real = detail_loss(model, batch)
        hr, guides, targets = centre_tiles(batch, model.floor_outputs(batch["lr"]), model.cfg.tile)
        decoded = model.decode(model.tokens(hr), guides)[2]
    torch.testing.assert_close(real, RESIDUAL_GAIN * (targets[2] - guides[2]))
    torch.testing.assert_close(fake, RESIDUAL_GAIN * (decoded - guides[2]))


def test_an_adversarial_run_trains_a_critic_beside_the_decoder_and_resumes_both(pairs_dir, start):
    out = start / "run"
    common = ["--out", str(out), "--pairs", str(pairs_dir), "--batch-size", "2", "--eval-every", "10"]
    main([*common, "--tokenizer", str(start / "tok"), "--floor", str(start / "floor"), "--steps", "2",
          "--adversarial", "0.5", "--critic-warmup", "1", "--floor-tokens", "0.5"])  # fmt: skip
    first = load_file(out / "discriminator.safetensors")
    main([*common, "--steps", "4", "--resume"])
    second = load_file(out / "discriminator.safetensors")
    assert json.loads((out / "state.json").read_text())["knobs"]["adversarial"] == 0.5
    assert any(not torch.equal(first[k], second[k]) for k in first)
    assert (out / "discriminator-optim.pt").exists()


def test_a_run_started_from_another_run_starts_with_its_decoder(pairs_dir, tmp_path):
    model = moved(Detail(*tiny_parts()))
    save_detail(model, tmp_path / "first")
    main(["--init", str(tmp_path / "first"), "--out", str(tmp_path / "second"), "--pairs", str(pairs_dir),
          "--steps", "0"])  # fmt: skip
    loaded = load_detail(tmp_path / "second")
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(v, loaded.decoder.state_dict()[k]), k


def test_the_spectrum_loss_ignores_where_in_its_patch_the_detail_lies_but_not_how_much_there_is():
    torch.manual_seed(0)
    sharp = torch.rand(1, 3, 64, 64) * 2 - 1
    moved = sharp.clone()
    for i in (0, 32):
        for j in (0, 32):  # each 32 px patch circularly shifted within itself
            moved[..., i : i + 32, j : j + 32] = sharp[..., i : i + 32, j : j + 32].roll((5, 9), (-2, -1))
    soft = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    assert torch.nn.functional.l1_loss(moved, sharp) > 0.3
    assert patch_spectrum_l1(moved, sharp) < 1e-5 < patch_spectrum_l1(soft, sharp)


def test_the_low_pass_erases_pixel_level_detail_on_the_marked_tiles_and_keeps_the_others():
    torch.manual_seed(0)
    content = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 64, 64), 9, 1, 4)  # smooth
    checker = 0.2 * (torch.arange(64).view(1, 64) + torch.arange(64).view(64, 1)).remainder(2).float()
    detailed = content + checker  # the same content with 1 px detail on top
    marked = torch.tensor([True, False])
    a, b = low_passed(content, marked, 2.0), low_passed(detailed, marked, 2.0)
    assert (a[0] - b[0]).abs().sub(0.1).abs().max() < 1e-3  # only the checker's mean is left
    assert torch.equal(a[1], content[1]) and torch.equal(b[1], detailed[1])


def test_dihedral_turns_an_image_as_the_training_batches_are_turned(pairs_dir):
    drawn = {"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}
    upright = to_tensors(drawn, 0)["x4"]["lr"]
    for k in range(8):
        assert torch.equal(dihedral(upright, k), to_tensors(drawn, k)["x4"]["lr"])


def test_the_equivariance_term_costs_nothing_for_detail_that_follows_the_content_and_costs_fixed_stripes():
    torch.manual_seed(0)
    floor_x4 = torch.rand(2, 3, 32, 32)
    stripes = 0.1 * (torch.arange(32) % 2).float()  # vertical, in the decoder's own frame
    sharpen = torch.nn.functional.avg_pool2d  # any content-driven change is turned with the content

    def detail(decoder):  # a tokenizer whose "tokens" are the image itself
        return argparse.Namespace(tokens=lambda img: [img], features=lambda idx: idx, decoder=decoder)

    def follows(f, g):
        return 2 * f - sharpen(g, 3, 1, 1)

    def striped(f, g):
        return g + stripes

    for k in range(1, 8):
        x4 = follows(floor_x4, floor_x4)
        assert equivariance_l1(detail(follows), floor_x4, x4, k) < 1e-6
    x4 = striped(floor_x4, floor_x4)
    turned = equivariance_l1(detail(striped), floor_x4, x4, 1)
    mirrored = equivariance_l1(detail(striped), floor_x4, x4, 6)
    assert turned == pytest.approx(0.05)  # horizontal against vertical stripes: 0.1 apart on half the pixels
    assert mirrored < 1e-6  # mirrored left-right and turned upside down, the stripes are where they were


def test_under_equivariance_the_x4_loss_adds_the_turned_decodes_difference(pairs_dir):
    model = moved(Detail(*tiny_parts()))
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    from_floor = torch.tensor([True, False])
    with torch.no_grad():
        plain = detail_loss(model, batch, from_floor)[1]
        turned = detail_loss(model, batch, from_floor, equivariance=1.0, turn=3)[1]
    assert "equivariance" not in plain and turned["equivariance"] > 0
    assert turned["x1"] == plain["x1"] and turned["x4"] == plain["x4"]  # the logs keep the plain L1s


def test_equivariance_leaves_the_tiles_decoded_from_the_hr_tokens_to_their_l1(pairs_dir):
    model = moved(Detail(*tiny_parts()))
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 2)["x4"]}, 0)["x4"]
    with torch.no_grad():
        logs = detail_loss(model, batch, torch.tensor([False, False]), equivariance=1.0, turn=3)[1]
    assert "equivariance" not in logs


# Clean LR 0.1 dB off, the HR tokens 1.5 dB above the floor.
CLEAN = {"clean_floor_x4": 31.6, "clean_own_x4": 31.5, "oracle_x4": 24.6}


def test_the_pairs_with_clean_lr_are_those_whose_lr_is_their_clean_target(pairs_dir):
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 8)["x4"]}, 0)["x4"]
    degraded = (batch["lr"] - batch["t1"]).abs().flatten(1).mean(1) > 0
    assert torch.equal(clean_lr(batch), ~degraded) and clean_lr(batch).any() and degraded.any()


def test_under_lowpass_only_floor_token_tiles_with_degraded_lr_compare_blurred_x4s(pairs_dir):
    model = moved(Detail(*tiny_parts()))
    batch = to_tensors({"x4": Pairs(pairs_dir).batch(np.random.default_rng(0), 8)["x4"]}, 0)["x4"]
    clean = clean_lr(batch)

    def x4_loss(from_floor: torch.Tensor, lowpass: float = 0.0) -> float:
        with torch.no_grad():
            return detail_loss(model, batch, from_floor, lowpass=lowpass)[1]["x4"]

    assert x4_loss(clean, 2.0) == x4_loss(clean)  # clean LR keeps its full L1
    assert x4_loss(~clean, 2.0) != x4_loss(~clean)  # degraded LR: blurred images


@pytest.mark.parametrize(
    ("row", "kept"),
    [
        ({"floor_x4": 23.1, "own_x4": 23.0, "own_niqe": 9.9} | CLEAN, True),  # lower NIQE, 0.1 dB off
        ({"floor_x4": 23.1, "own_x4": 22.5, "own_niqe": 9.0} | CLEAN, False),  # lower NIQE, but 0.6 dB off
        ({"floor_x4": 23.1, "own_x4": 23.0, "own_niqe": 9.0} | CLEAN | {"clean_own_x4": 29.7},
         False),  # lower NIQE at realistic LR, but 1.9 dB off on clean LR
        ({"floor_x4": 23.1, "own_x4": 23.2, "own_niqe": 10.1} | CLEAN, False),  # higher NIQE
        ({"floor_x4": 23.1, "own_x4": 23.2} | CLEAN, False),  # no NIQE scored
        ({"floor_x4": 23.1, "own_x4": 23.1, "own_niqe": 8.8, "own_streak": 1.9} | CLEAN, False),  # streaks
        ({"floor_x4": 23.1, "own_x4": 23.1, "own_niqe": 9.5, "own_streak": 0.4} | CLEAN, True),  # detail
        ({"floor_x4": 23.1, "own_x4": 23.1, "own_niqe": 9.5} | CLEAN | {"oracle_x4": 23.3},
         False),  # lower NIQE, but the HR tokens add only 0.2 dB: the decoder stopped reading the tokens
    ],
)  # fmt: skip
def test_a_check_is_best_only_with_lower_niqe_from_the_floors_tokens_within_half_a_db_and_no_streaks(
    row, kept
):
    assert better_check(row, {"step": 100, "own_x4": 23.1, "own_niqe": 10.0}) is kept


def test_the_first_check_with_niqe_within_half_a_db_is_the_best_so_far():
    assert better_check({"floor_x4": 23.1, "own_x4": 23.0, "own_niqe": 12.0} | CLEAN, None)


def test_during_the_critics_warmup_the_decoder_learns_from_the_reconstruction_alone():
    from hvar.discriminator import PatchDiscriminator

    model = moved(Detail(*tiny_parts()))
    critic = PatchDiscriminator(width=8)
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    fake = model.decoder.conv_out.weight.sum() + torch.rand(2, 3, 32, 32)
    rec = fake.abs().mean()
    loss, logs = critic_step(critic, opt, model, rec, fake, torch.rand(2, 3, 32, 32), weight=0.0)
    assert loss is rec and set(logs) == {"rec", "critic"}
    assert any(not torch.equal(v, critic.state_dict()[k]) for k, v in before.items())
    loss, logs = critic_step(critic, opt, model, rec, fake, torch.rand(2, 3, 32, 32), weight=0.5)
    assert loss is not rec and logs["balance"] > 0


@pytest.mark.parametrize(
    "extra", [["--tokenizer", "tok"], ["--floor", "floor"], ["--spectrum", "-1"], ["--equivariance", "-1"]]
)
def test_a_run_from_another_refuses_a_tokenizer_a_floor_or_a_negative_weight(pairs_dir, tmp_path, extra):
    with pytest.raises(SystemExit):
        main(["--init", str(tmp_path / "first"), "--out", str(tmp_path / "second"), "--pairs", str(pairs_dir),
              *extra])  # fmt: skip
    assert not (tmp_path / "second").exists()


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--lowpass", "2"], "needs --floor-tokens"),  # no floor-token tiles: it would do nothing
        (["--equivariance", "1"], "needs --floor-tokens"),  # the same
        (["--lowpass", "9", "--floor-tokens", "0.5"], "at most 8.0"),  # wider than the tile can hold
    ],
)
def test_a_run_refuses_a_lowpass_that_would_do_nothing_or_reach_past_the_tile(
    pairs_dir, tmp_path, capsys, extra, why
):
    with pytest.raises(SystemExit):
        main(["--init", str(tmp_path / "first"), "--out", str(tmp_path / "second"), "--pairs", str(pairs_dir),
              *extra])  # fmt: skip
    assert why in capsys.readouterr().err and not (tmp_path / "second").exists()


def test_a_run_folder_is_never_overwritten(pairs_dir, start):
    (start / "run").mkdir()
    with pytest.raises(SystemExit):
        main(["--out", str(start / "run"), "--pairs", str(pairs_dir), "--tokenizer", str(start / "tok"),
              "--floor", str(start / "floor"), "--steps", "1"])  # fmt: skip
    assert not any((start / "run").iterdir())


def test_the_sharpened_floor_keeps_the_floors_x1_and_sharpens_its_x2_and_x4():
    from hvar.eval_detail import upscale

    model = Detail(*tiny_parts())
    rng = np.random.default_rng(0)
    lr = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    hr = (rng.random((96, 96, 3)) * 255).astype(np.uint8)
    plain = upscale(model, lr, hr, "floor-alone", None, "img")
    sharp = upscale(model, lr, hr, "floor-sharpened", None, "img")
    assert np.array_equal(plain[0], sharp[0])
    for p, q in zip(plain[1:], sharp[1:], strict=True):
        assert p.shape == q.shape and np.abs(p.astype(int) - q.astype(int)).max() > 0


def test_the_figure_shows_the_lr_every_source_and_the_original_in_two_rows(photo_root, tmp_path):
    from PIL import Image

    out = tmp_path / "figure.png"
    photo = photo_root / "train" / "img0.png"
    figure(Detail(*tiny_parts()), None, photo, out, ("floor-alone", "hr"), crop=64)
    im = Image.open(out)
    assert im.width == 4 * 64 + 3 * 4 and im.height == 2 * (64 + 14) + 4  # 4 panels, 2 rows with labels


def test_a_figure_named_jpg_is_written_as_a_jpeg(photo_root, tmp_path):
    from PIL import Image

    out = tmp_path / "figure.jpg"
    figure(Detail(*tiny_parts()), None, photo_root / "train" / "img0.png", out, ("floor-alone",), crop=64)
    assert Image.open(out).format == "JPEG"


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
