"""The damage reader's teaching: what is measured of a pair, and a run that writes a reader."""

import json

import numpy as np
import pytest
import torch

from hvar.damage import NUMBERS, damage, main
from hvar.degrade import gaussian_blur
from hvar.floor import DamageReader, load_reader
from hvar.pairs import build


@pytest.fixture
def clean():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    img = (
        128 + 60 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None] + rng.normal(0, 10, (32, 32, 3))
    )
    return torch.from_numpy(np.clip(img, 0, 255) / 255).permute(2, 0, 1)[None].float()


def test_an_undamaged_pair_measures_zero(clean):
    torch.testing.assert_close(damage(clean, clean), torch.zeros(1, len(NUMBERS)))


def test_blur_lowers_the_high_bands_and_noise_raises_them(clean):
    blurred = torch.from_numpy(gaussian_blur(clean[0].permute(1, 2, 0).numpy(), 1.5)).permute(2, 0, 1)[None]
    noisy = (clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(1)) * 0.05).clamp(0, 1)
    b, n = damage(blurred, clean)[0], damage(noisy, clean)[0]
    assert b[5] < b[0] and b[5] < -1  # the highest band loses the most
    assert n[5] > n[0] and n[5] > 1 and n[6] > 0.5  # colour noise shows in the chroma too
    assert b[7] > 0 and n[7] > 0


def test_a_run_writes_a_reader_the_floor_loads(photo_root, tmp_path):
    pairs = build(tmp_path / "pairs", count=10, lr_side=16, workers=1)
    main(["--out", str(tmp_path / "run"), "--pairs", str(pairs), "--width", "8", "--batch-size", "2",
          "--held-out", "4", "--steps", "2", "--eval-every", "1", "--threads", "1"])  # fmt: skip
    DamageReader(8).load_state_dict(load_reader(tmp_path / "run"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and set(rows[-1]["r2_held_out"]) == set(NUMBERS)


def test_a_cache_too_small_for_the_held_out_pairs_is_a_clear_cli_error(photo_root, tmp_path, capsys):
    pairs = build(tmp_path / "pairs", count=4, lr_side=16, workers=1)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--pairs", str(pairs), "--held-out", "4"])
    assert "too few for --held-out" in capsys.readouterr().err


def test_a_folder_that_holds_a_reader_is_never_overwritten(photo_root, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "reader.safetensors").write_bytes(b"kept")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--pairs", str(tmp_path / "none")])
    assert "already holds a reader" in capsys.readouterr().err
    assert (tmp_path / "run" / "reader.safetensors").read_bytes() == b"kept"
