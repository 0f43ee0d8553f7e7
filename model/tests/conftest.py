import numpy as np
import pytest
import torch
from benchmark_data import require
from PIL import Image

torch.backends.nnpack.set_flags(False)  # unsupported on these CPUs; silences a warning per conv
torch.set_num_threads(1)  # tiny models; avoids thread oversubscription next to training jobs


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "benchmark_data(*parts): needs ../shared/<part> (datasets, metrics, pretrained); skipped where "
        "it is missing, failed instead with HVAR_REQUIRE_BENCHMARK_DATA=1 (benchmark_data.py)",
    )


def pytest_runtest_setup(item):
    # Before the test's fixtures, so none of them reads a folder that is not there.
    for mark in item.iter_markers("benchmark_data"):
        require(*mark.args)


@pytest.fixture
def photo_root(tmp_path, monkeypatch):
    """A fake dataset root (train/ + dev/Set5/HR + dev/Set14/HR) of small synthetic photos."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:112]
    for sub, n in (("train", 3), ("dev/Set5/HR", 2), ("dev/Set14/HR", 1)):
        folder = tmp_path / sub
        folder.mkdir(parents=True)
        for i in range(n):
            base = np.stack([(xx * (i + 1)) % 256, (yy * 2) % 256, (xx + yy) % 256], -1).astype(np.float64)
            img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"img{i}.png")
    monkeypatch.setenv("HVAR_DATA_ROOT", str(tmp_path))
    return tmp_path
