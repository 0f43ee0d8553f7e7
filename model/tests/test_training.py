"""What the three trainers share: the budget, the learning-rate schedule, the optimizer groups and the
run folder's metrics."""

import json
import math

import pytest
import torch

from hvar import training


def test_the_learning_rate_warms_up_then_stays_at_its_peak():
    assert training.learning_rate(0, 1.0, 100) == pytest.approx(0.01)
    assert training.learning_rate(99, 1.0, 100) == training.learning_rate(5000, 1.0, 100) == 1.0


def test_with_a_progress_the_learning_rate_warms_up_then_decays_to_one_percent():
    lr = training.learning_rate
    assert lr(0, 1.0, 200, 0.0) < lr(199, 1.0, 200, 0.2) == pytest.approx(1.0)
    assert lr(200, 1.0, 200, 0.5) == pytest.approx(0.505)
    assert lr(1000, 1.0, 200, 1.0) == pytest.approx(0.01)


def test_a_budget_ends_at_its_steps_or_its_time_counting_earlier_sessions():
    by_steps = training.Budget(10, 0.0)
    assert by_steps.progress(5) == 0.5 and not by_steps.done(9) and by_steps.done(10)
    resumed = training.Budget(math.inf, 1.0, elapsed_s=59.99)  # a minute, of which a resumed run spent most
    assert resumed.elapsed() >= 59.99 and resumed.progress(0) >= 0.99
    assert training.Budget(0, 0.0).done(0)  # no steps: nothing to train


def test_the_optimizer_decays_the_chosen_weights_and_leaves_frozen_ones_out():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    model[2].requires_grad_(False)
    opt = training.adamw(model.named_parameters(), 1e-3, (0.9, 0.95), 0.1, lambda name, p: p.ndim == 2)
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [(4, 4)] and decay["weight_decay"] == 0.1
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # bias, norm weight, norm bias


def test_means_cover_the_steps_since_they_were_last_read():
    means = training.Means()
    means.add({"loss": 1.0})
    means.add({"loss": 3.0})
    assert means.pop() == {"loss": 2.0} and means.count == 0


def test_metrics_append_across_sessions_and_write_nothing_when_disabled(tmp_path):
    for step in (1, 2):
        metrics = training.Metrics(tmp_path)
        metrics.write({"step": step})
        metrics.close()
    training.Metrics(tmp_path, enabled=False).write({"step": 3})
    assert training.read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1}, {"step": 2}]


def test_a_run_folder_is_resumed_only_when_asked_and_never_overwritten(tmp_path):
    assert training.saved_state(tmp_path, resume=False) is None
    with pytest.raises(SystemExit, match="no checkpoint"):
        training.saved_state(tmp_path, resume=True)
    (tmp_path / "state.json").write_text(json.dumps({"step": 7}))
    assert training.saved_state(tmp_path, resume=True) == {"step": 7}
    with pytest.raises(SystemExit, match="already holds a run"):
        training.saved_state(tmp_path, resume=False)


def test_a_group_with_an_lr_mult_gets_that_many_times_the_learning_rate():
    fast, slow = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [slow]}, {"params": [fast], "lr_mult": 20.0}], lr=1.0)
    training.set_learning_rate(opt, 1e-4)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, pytest.approx(2e-3)]


def test_curves_are_drawn_in_a_palette_of_256_colours(tmp_path):
    from PIL import Image

    rows = [{"step": s, "loss": 1 / (s + 1)} for s in range(5)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    training.save_curves(tmp_path, lambda rows, axes: axes[0].plot([r["loss"] for r in rows], label="loss"))
    im = Image.open(tmp_path / "curves.png")
    assert im.mode == "P" and im.size == (1500, 400)
