"""Fine-tuning the floor: the loss covers every head that has a target, runs resume, bad input is refused."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from hvar.config import FLOOR_PRESETS
from hvar.floor import Floor, load_floor, save_floor
from hvar.pairs import Pairs, build
from hvar.train_floor import floor_loss, main, to_tensors, with_defects


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


@pytest.mark.parametrize(("mild", "whole"), [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
def test_a_share_of_one_damages_the_clean_pairs_and_no_other(pairs_dir, mild, whole):
    raw = Pairs(pairs_dir).batch(np.random.default_rng(0), 8)
    clean = {
        kind: [np.array_equal(lr, t1) for lr, t1 in zip(a["lr"], a["t1"], strict=True)]
        for kind, a in raw.items()
    }
    before = {kind: a["lr"].copy() for kind, a in raw.items()}
    with_defects(raw, np.random.default_rng(1), mild, whole)
    for kind, arrays in raw.items():
        changed = [not np.array_equal(a, b) for a, b in zip(arrays["lr"], before[kind], strict=True)]
        assert not any(ch and not c for ch, c in zip(changed, clean[kind], strict=True))  # degraded: kept
        assert sum(changed) >= sum(clean[kind]) - 1  # a faint blur of a smooth field may round to itself


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


def test_freezing_the_upscaler_of_a_one_stage_floor_is_a_clear_error(pairs_dir, tmp_path):
    with pytest.raises(SystemExit, match="one stage"):
        main(["--out", str(tmp_path / "run"), "--preset", "tiny", "--pairs", str(pairs_dir),
              "--freeze-upscaler"])  # fmt: skip
    assert not (tmp_path / "run").exists()


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
