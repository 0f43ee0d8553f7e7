import json

import pytest
from tiny_models import random_hvar

from hvar.eval_tokens import dev_tiles, main
from hvar.sr import save_hvar


def test_dev_tiles_are_cut_without_overlap(photo_root):
    tiles = dev_tiles(64, ("Set5",))
    assert tiles and all(t.shape == (64, 64, 3) for _, t in tiles)
    assert len({name for name, _ in tiles}) == len(tiles)


def test_runs_with_and_without_dpo_get_the_margin_and_per_segment_accuracy(photo_root, tmp_path):
    save_hvar(random_hvar(), tmp_path / "dpo")
    save_hvar(random_hvar(seed=1, dpo_mode="off"), tmp_path / "nodpo")
    out = main(["--run", str(tmp_path / "dpo"), str(tmp_path / "nodpo"), "--dataset", "Set5",
                "--md", str(tmp_path / "t.md"), "--json", str(tmp_path / "t.json")])  # fmt: skip
    for stats in out.values():
        for d in ("bicubic", "realistic"):
            s = stats[d]
            assert s["margin"] == pytest.approx(s["l_hr"] - s["l_lr"], abs=1e-5)
            assert all(0 <= s[f"acc_seg{n}"] <= 1 for n in range(3)) and s["ce"] == pytest.approx(-s["l_hr"])
    assert "| nodpo | realistic |" in (tmp_path / "t.md").read_text()
    assert json.loads((tmp_path / "t.json").read_text())["dpo"]["tiles"] > 0


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--run", str(tmp_path)])
    assert "not a run folder" in capsys.readouterr().err
