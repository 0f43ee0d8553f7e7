"""The damage reader's teaching: pairs that share only their damage, and the contrastive task on them."""

import numpy as np
import pytest
import torch

from hvar.damage import Embedder, info_nce, load_reader, main, make_pairs, same_damage_pair, top1
from hvar.data import load_images
from hvar.floor import DamageReader
from hvar.paths import data_root


def test_a_pair_is_two_crops_of_other_content(photo_root):
    images = load_images(str(data_root() / "train"))
    pair = same_damage_pair(images, np.random.default_rng(3), lr_side=16)
    assert pair.shape == (2, 16, 16, 3) and pair.dtype == np.uint8
    assert not np.array_equal(pair[0], pair[1])


def test_the_pairs_are_the_same_with_one_or_two_workers(photo_root):
    assert np.array_equal(
        make_pairs(6, seed=1, workers=1, lr_side=16), make_pairs(6, seed=1, workers=2, lr_side=16)
    )


def test_info_nce_is_low_when_each_crop_is_nearest_its_partner_and_high_when_not():
    z = torch.eye(8)
    assert info_nce(z, z) < 0.01
    assert info_nce(z, z.roll(1, dims=0)) > 5


def test_top1_counts_the_crops_whose_nearest_crop_is_their_partner():
    torch.manual_seed(0)
    pairs = np.random.default_rng(0).integers(0, 256, (6, 1, 16, 16, 3), dtype=np.uint8)
    model = Embedder(8)
    assert top1(model, np.concatenate([pairs, pairs], axis=1)) == 1.0  # a partner identical to its crop


def test_a_run_writes_a_reader_the_floor_loads(photo_root, tmp_path):
    main(["--out", str(tmp_path / "run"), "--width", "8", "--pairs", "8", "--held-out", "4", "--lr-side",
          "16", "--batch-size", "4", "--steps", "2", "--eval-every", "1", "--threads", "1"])  # fmt: skip
    DamageReader(8).load_state_dict(load_reader(tmp_path / "run"))
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2


def test_a_batch_larger_than_the_pairs_is_a_clear_cli_error(photo_root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--pairs", "4", "--batch-size", "8"])
    assert "--batch-size" in capsys.readouterr().err
