import numpy as np
import pytest
import torch

from hvar.config import PRESETS
from hvar.eval_tokenizer import compare_markdown, evaluate, reconstruct, targets
from hvar.tokenizer import HIT


def test_an_image_smaller_than_one_hr_tile_is_refused():
    model = HIT(PRESETS["tiny"]).eval()  # HR tile 64
    with pytest.raises(ValueError, match="smaller than the HR tile"):
        reconstruct(model, np.zeros((50, 100, 3), np.uint8))


def test_reconstruction_and_targets_come_at_x1_x2_x4_sizes():
    torch.manual_seed(0)
    model = HIT(PRESETS["tiny"]).eval()
    img = np.random.default_rng(0).integers(0, 256, (82, 100, 3), dtype=np.uint8)
    recs, hits = reconstruct(model, img)
    sizes = [(20, 25), (40, 50), (80, 100)]
    assert [r.shape[:2] for r in recs] == sizes
    assert [t.shape[:2] for t in targets(img)] == sizes
    assert hits.sum() > 0


def test_evaluate_reports_psnr_per_segment_and_codebook_usage(photo_root):
    torch.manual_seed(0)
    ev = evaluate(HIT(PRESETS["tiny"]))
    assert set(ev["psnr_y"]) == {"Set5", "Set14"}
    assert set(ev["psnr_y"]["Set5"]) == {"x1", "x2", "x4"}
    assert 0 < ev["usage"] <= 1
    assert len(ev["usage_per_scale"]) == PRESETS["tiny"].num_scales


def test_comparison_table_has_one_row_per_run(photo_root, tmp_path):
    import json

    from hvar.config import get_config

    for name, hier in (("a", True), ("b", False)):
        (tmp_path / name).mkdir()
        ev = {"psnr_y": {s: {"x1": 30.0, "x2": 28.0, "x4": 26.0} for s in ("Set5", "Set14")}, "usage": 0.7}
        rep = {
            "config": get_config("tiny", hierarchical=hier).to_dict(),
            "eval": ev,
            "step": 10,
            "train_minutes": 1,
        }
        (tmp_path / name / "report.json").write_text(json.dumps(rep))
    table = compare_markdown([tmp_path / "a", tmp_path / "b"])
    assert "| a | HIT |" in table and "| b | plain VAR |" in table


def guided_tiny() -> HIT:
    """A tiny LR-guided HIT whose guide branch is switched on (it starts at zero)."""
    import dataclasses

    torch.manual_seed(0)
    model = HIT(dataclasses.replace(PRESETS["tiny"], lr_guided_decoder=True))
    for g in model.decoder.guides:
        torch.nn.init.normal_(g[-1].weight, std=0.1)
    return model.eval()


def test_a_realistic_guide_and_the_lr_images_tokens_change_the_reconstruction(photo_root):
    model = guided_tiny()
    base = evaluate(model, sets=("Set5",))["psnr_y"]["Set5"]
    real = evaluate(model, sets=("Set5",), guide="realistic")["psnr_y"]["Set5"]
    lr_tokens = evaluate(model, sets=("Set5",), guide="realistic", tokens="lr")["psnr_y"]["Set5"]
    assert real["x4"] != base["x4"] and lr_tokens["x4"] != real["x4"]


def test_guide_options_are_refused_for_a_decoder_without_a_guide(photo_root):
    with pytest.raises(ValueError, match="LR-guided"):
        evaluate(HIT(PRESETS["tiny"]), sets=("Set5",), guide="realistic")
