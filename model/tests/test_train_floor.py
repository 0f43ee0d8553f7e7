"""Fine-tuning the floor: the loss covers every head that has a target, runs resume, bad input is refused."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hvar.config import FLOOR_PRESETS
from hvar.degrade import jpeg
from hvar.floor import READER_FILE, DamageReader, Floor, load_floor, save_floor
from hvar.pairs import Pairs, build
from hvar.train_floor import floor_loss, main, restore_loss, to_tensors, with_defects


@pytest.fixture
def pairs_dir(photo_root, tmp_path):
    return build(tmp_path / "pairs", count=8, lr_side=16, workers=1)


def test_the_loss_is_zero_only_when_every_head_hits_its_target(pairs_dir):
    torch.manual_seed(0)
    model = Floor(FLOOR_PRESETS["tiny"]).train()
    batch = to_tensors(Pairs(pairs_dir).batch(np.random.default_rng(0), 2), 0)
    loss, parts = floor_loss(model, batch)
    assert set(parts) == {"x1", "x2", "x4"} and loss.item() == pytest.approx(
        sum(parts.values()) / 3, rel=1e-5
    )
    assert all(v > 0 for v in parts.values())


def test_one_rotation_turns_every_array_of_a_batch_alike(pairs_dir):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 2)
    plain, turned = to_tensors(raw, 0), to_tensors(raw, 5)  # 5: mirrored, then a quarter turn
    for kind in plain:
        for name, x in plain[kind].items():
            assert torch.equal(turned[kind][name], torch.rot90(x.flip(-1), 1, dims=(-2, -1)))


@pytest.mark.parametrize(("mild", "whole", "jpeg"), [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.3, 0.2)])
def test_a_share_of_one_damages_the_clean_pairs_and_no_other(pairs_dir, mild, whole, jpeg):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    clean = {
        kind: [np.array_equal(lr, t1) for lr, t1 in zip(a["lr"], a["t1"], strict=True)]
        for kind, a in raw.items()
    }
    before = {kind: a["lr"].copy() for kind, a in raw.items()}
    with_defects(raw, np.random.default_rng(1), mild, whole, jpeg)
    for kind, arrays in raw.items():
        changed = [not np.array_equal(a, b) for a, b in zip(arrays["lr"], before[kind], strict=True)]
        assert not any(ch and not c for ch, c in zip(changed, clean[kind], strict=True))  # degraded: kept
        assert sum(changed) >= sum(clean[kind]) - 1  # a faint blur of a smooth field may round to itself


def test_a_jpeg_share_gives_a_jpeg_round_trip_and_nothing_else(pairs_dir):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    clean = [np.array_equal(lr, t1) for lr, t1 in zip(raw["x4"]["lr"], raw["x4"]["t1"], strict=True)]
    with_defects(raw, np.random.default_rng(1), 0.0, 0.0, 1.0)
    for was_clean, lr, t1 in zip(clean, raw["x4"]["lr"], raw["x4"]["t1"], strict=True):
        if was_clean:  # a JPEG round trip of the target at one quality of 30-95, bit for bit
            trips = [np.round(jpeg(t1.astype(np.float32) / 255.0, q) * 255.0) for q in range(30, 96)]
            assert any(np.array_equal(lr, t) for t in trips)


def test_a_jpeg_quality_range_draws_only_those_qualities(pairs_dir):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    clean = [np.array_equal(lr, t1) for lr, t1 in zip(raw["x4"]["lr"], raw["x4"]["t1"], strict=True)]
    with_defects(raw, np.random.default_rng(1), 0.0, 0.0, 1.0, (97, 98))
    for was_clean, lr, t1 in zip(clean, raw["x4"]["lr"], raw["x4"]["t1"], strict=True):
        if was_clean:
            trips = [np.round(jpeg(t1.astype(np.float32) / 255.0, q) * 255.0) for q in (97, 98)]
            assert any(np.array_equal(lr, t) for t in trips)


def test_a_texture_share_makes_x1s_pair_a_fine_texture_given_as_it_is_or_as_a_jpeg(pairs_dir):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    before = {kind: {k: a.copy() for k, a in arrays.items()} for kind, arrays in raw.items()}
    with_defects(raw, np.random.default_rng(1), 0.0, 0.0, 0.0, (50, 50), texture=1.0)
    kinds = {"as it is": 0, "as a JPEG": 0}
    for kind, arrays in raw.items():
        for i, (lr, t1) in enumerate(zip(arrays["lr"], arrays["t1"], strict=True)):
            lr0, t10 = before[kind]["lr"][i], before[kind]["t1"][i]
            if not np.array_equal(lr0, t10):  # a degraded pair is left as it was
                assert np.array_equal(lr, lr0) and np.array_equal(t1, t10)
                continue
            assert not np.array_equal(t1, t10)
            if np.array_equal(lr, t1):
                kinds["as it is"] += 1
            else:
                assert np.array_equal(lr, np.round(jpeg(t1.astype(np.float32) / 255.0, 50) * 255.0))
                kinds["as a JPEG"] += 1
    assert min(kinds.values()) > 0


def test_a_texture_share_needs_restore_only_because_x2_and_x4_keep_the_photos_targets(
    pairs_dir, tmp_path, capsys
):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--texture", "0.2"])  # fmt: skip
    assert "needs --restore-only" in capsys.readouterr().err


@pytest.mark.parametrize("qualities", [["0", "90"], ["90", "101"], ["95", "60"]])
def test_a_jpeg_quality_range_outside_1_to_100_is_a_clear_cli_error(pairs_dir, tmp_path, capsys, qualities):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--jpeg", "0.5", "--jpeg-quality", *qualities])  # fmt: skip
    assert "1 <= LO <= HI <= 100" in capsys.readouterr().err


def test_a_relative_floor_needs_restore_only_because_only_that_loss_reads_it(pairs_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--relative-floor", "6"])  # fmt: skip
    assert "needs --restore-only" in capsys.readouterr().err


@pytest.mark.parametrize("mult", ["0", "-2"])
def test_a_context_lr_mult_of_zero_or_less_is_a_clear_cli_error(pairs_dir, tmp_path, capsys, mult):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--context-lr-mult", mult])  # fmt: skip
    assert "--context-lr-mult must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("levels", ["0", "-1"])
def test_a_relative_floor_of_zero_or_less_is_a_clear_cli_error(pairs_dir, tmp_path, capsys, levels):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--restore-only", "--relative-floor", levels])  # fmt: skip
    assert "--relative-floor must be > 0" in capsys.readouterr().err


def identity_restorer(seed: int = 0) -> Floor:
    """A two-stage tiny floor whose x1 is its input: the head that corrects it is zero."""
    torch.manual_seed(seed)
    model = Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=2)).train()
    with torch.no_grad():
        for p in model.heads["x1"].parameters():
            p.zero_()
    return model


def noisy_pairs(sigma: float, n: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(int(sigma))
    t1 = torch.rand(n, 3, 16, 16, generator=gen)
    return {"lr": t1 + torch.randn(t1.shape, generator=gen) * sigma / 255.0, "t1": t1}


class Corrected(torch.nn.Module):
    """x1 = the input plus a free correction per pixel, so the loss's gradient shows each pixel's weight."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.correction = torch.nn.Parameter(torch.zeros(shape))

    def restore(self, lr: torch.Tensor) -> torch.Tensor:
        return lr + self.correction


def test_the_restore_loss_is_zero_when_x1_is_the_clean_target():
    clean = {kind: noisy_pairs(0.0) for kind in ("x4", "x2")}
    loss, parts = restore_loss(identity_restorer(), clean)
    assert loss.item() == 0.0 and parts == {"x1": 0.0}


def test_the_restore_loss_pulls_a_faint_defect_harder_than_a_heavy_one():
    """Plain L1 weighs every pixel alike, so the realistic recipe's heavy defects would drown the faint
    ones; relative to its input's own error a faint pair's pixel pulls x1 several times harder."""
    batch = {"x4": noisy_pairs(2.0), "x2": noisy_pairs(30.0)}  # restore_loss puts x4's pairs first
    model = Corrected((8, 3, 16, 16))
    restore_loss(model, batch)[0].backward()
    pull = model.correction.grad.abs().mean(dim=(1, 2, 3))
    assert pull[:4].min() > 5 * pull[4:].max()


def test_a_larger_relative_floor_moves_the_pull_towards_the_heavy_defects():
    batch = {"x4": noisy_pairs(2.0), "x2": noisy_pairs(30.0)}

    def faint_over_heavy(levels: float) -> float:
        model = Corrected((8, 3, 16, 16))
        restore_loss(model, batch, relative_floor=levels)[0].backward()
        pull = model.correction.grad.abs().mean(dim=(1, 2, 3))
        return float(pull[:4].mean() / pull[4:].mean())

    assert faint_over_heavy(8.0) < 0.5 * faint_over_heavy(2.0)


def test_no_share_leaves_the_batch_as_drawn(pairs_dir):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    before = {kind: a["lr"].copy() for kind, a in raw.items()}
    with_defects(raw, np.random.default_rng(1), 0.0, 0.0)
    assert all(np.array_equal(raw[kind]["lr"], before[kind]) for kind in raw)


def test_a_run_trains_resumes_and_keeps_one_metrics_history(pairs_dir, tmp_path):
    out = tmp_path / "run"
    common = ["--out", str(out), "--preset", "tiny", "--pairs", str(pairs_dir), "--batch-size", "2",
              "--eval-every", "50"]  # fmt: skip
    main([*common, "--steps", "4", "--eval-every", "2"])
    assert json.loads((out / "state.json").read_text())["step"] == 4
    main([*common, "--steps", "6", "--resume"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((out / "state.json").read_text())["step"] == 6
    assert [r["step"] for r in rows if "psnr_bicu_x4" in r] == [0, 2, 4, 6]
    assert all("x1_gain_jpeg90" in r for r in rows if "psnr_bicu_x4" in r)
    assert (out / "floor.safetensors").exists() and (out / "curves.png").exists()


def test_a_frozen_upscaler_stays_as_it_was_while_the_restorer_trains(pairs_dir, tmp_path):
    torch.manual_seed(0)
    save_floor(Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=2)), tmp_path / "start")
    out = tmp_path / "run"
    common = ["--init", str(tmp_path / "start"), "--out", str(out), "--pairs", str(pairs_dir),
              "--batch-size", "2", "--eval-every", "50", "--freeze-upscaler"]  # fmt: skip
    main([*common, "--steps", "3"])
    main(["--out", str(out), "--pairs", str(pairs_dir), "--batch-size", "2", "--steps", "5", "--resume"])
    start, trained = load_floor(tmp_path / "start"), load_floor(out)
    same = [torch.equal(a, b) for a, b in zip(start.parameters(), trained.parameters(), strict=True)]
    stage = ["upscaler." in k for k, _ in start.named_parameters()]
    assert same == stage  # every upscaler weight unchanged after the resume too, every restorer weight moved


def test_a_restore_only_run_trains_the_restorer_on_x1_alone(pairs_dir, tmp_path):
    torch.manual_seed(0)
    save_floor(Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=2)), tmp_path / "start")
    out = tmp_path / "run"
    args = [
        "--init",
        str(tmp_path / "start"),
        "--out",
        str(out),
        "--pairs",
        str(pairs_dir),
        "--batch-size",
        "2",
    ]
    main([*args, "--eval-every", "50", "--steps", "50", "--restore-only", "--jpeg", "0.5"])
    start, trained = load_floor(tmp_path / "start"), load_floor(out)
    same = [torch.equal(a, b) for a, b in zip(start.parameters(), trained.parameters(), strict=True)]
    assert same == ["upscaler." in k for k, _ in start.named_parameters()]
    losses = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [set(r) - {"step", "loss", "lr", "seconds"} for r in losses if "loss" in r] == [{"x1"}]


def test_an_x2_only_run_trains_x2s_blocks_and_head_on_x2_alone(pairs_dir, tmp_path):
    torch.manual_seed(0)
    save_floor(Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=2, x2_blocks=1)), tmp_path / "start")
    out = tmp_path / "run"
    main(["--init", str(tmp_path / "start"), "--out", str(out), "--pairs", str(pairs_dir),
          "--batch-size", "2", "--eval-every", "50", "--steps", "50", "--x2-only"])  # fmt: skip
    start, trained = load_floor(tmp_path / "start"), load_floor(out)
    moved = {k for (k, a), b in zip(start.named_parameters(), trained.parameters(), strict=True)
             if not torch.equal(a, b)}  # fmt: skip
    x2_parts = ("upscaler.x2_body.", "upscaler.heads.x2")
    assert moved == {k for k, _ in start.named_parameters() if k.startswith(x2_parts)}
    losses = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [set(r) - {"step", "loss", "lr", "seconds"} for r in losses if "loss" in r] == [{"x2"}]


def test_x2_only_is_not_with_a_restore_only_run(pairs_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "cascade", "--pairs", str(pairs_dir),
              "--x2-only", "--restore-only"])  # fmt: skip
    assert "--x2-only trains x2's blocks and head alone" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--freeze-upscaler", "--restore-only", "--x2-only"])
def test_a_one_stage_floor_cannot_train_its_stages_apart(pairs_dir, tmp_path, flag):
    with pytest.raises(SystemExit, match=f"{flag}: this floor has one stage"):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir), flag])
    assert not (tmp_path / "run").exists()


def test_shares_of_the_clean_pairs_over_one_are_a_clear_cli_error(pairs_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--light", "0.6", "--jpeg", "0.6"])  # fmt: skip
    assert "together <= 1" in capsys.readouterr().err


def test_a_run_folder_is_never_overwritten(pairs_dir, tmp_path):
    args = ["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir), "--steps", "1"]
    main(args)
    with pytest.raises(SystemExit, match="already holds a run"):
        main(args)


def test_a_missing_pair_cache_is_a_clear_cli_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(tmp_path / "none")])
    assert "no finished pair cache" in capsys.readouterr().err


def test_a_time_budget_ends_a_run_before_its_steps(pairs_dir, tmp_path):
    out = tmp_path / "run"
    main(["--out", str(out), "--preset", "tiny", "--pairs", str(pairs_dir), "--batch-size", "2",
          "--steps", "1000000", "--minutes", "0.01"])  # fmt: skip
    state = json.loads((out / "state.json").read_text())
    assert 1 <= state["step"] < 1000000 and state["seconds"] >= 0.6


def test_a_new_run_can_start_from_another_runs_weights(pairs_dir, tmp_path):
    common = ["--preset", "tiny", "--pairs", str(pairs_dir), "--batch-size", "2", "--eval-every", "50"]
    main(["--out", str(tmp_path / "first"), *common, "--steps", "2"])
    main(["--out", str(tmp_path / "second"), "--init", str(tmp_path / "first"), *common, "--steps", "0"])
    first, second = load_floor(tmp_path / "first"), load_floor(tmp_path / "second")
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    assert json.loads((tmp_path / "second" / "state.json").read_text())["step"] == 0


def test_a_damage_reader_is_loaded_and_kept_while_the_film_from_it_learns(pairs_dir, tmp_path):
    torch.manual_seed(0)
    save_floor(Floor(FLOOR_PRESETS["cascade"]), tmp_path / "start")
    reader = DamageReader(FLOOR_PRESETS["cascade-context"].context)
    (tmp_path / "reader").mkdir()
    save_file(reader.state_dict(), tmp_path / "reader" / READER_FILE)
    main(["--init", str(tmp_path / "start"), "--preset", "cascade-context", "--out", str(tmp_path / "run"),
          "--damage-reader", str(tmp_path / "reader"), "--pairs", str(pairs_dir), "--restore-only",
          "--batch-size", "2", "--steps", "3", "--eval-every", "50"])  # fmt: skip
    trained = load_floor(tmp_path / "run")
    for name, w in reader.state_dict().items():
        assert torch.equal(trained.context.read.state_dict()[name], w), name
    assert trained.context.film.weight.abs().sum() > 0


def test_a_damage_reader_needs_a_preset_with_a_context(pairs_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--damage-reader", str(tmp_path)])  # fmt: skip
    assert "--damage-reader starts a new run of a preset with a context" in capsys.readouterr().err
