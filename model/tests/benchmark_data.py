"""Tests that need the data in ../shared: skipped where it is missing, unless CI asks for it.

A fresh clone has no ../shared beside it, and its `npm test` must still pass: a test marked
`@pytest.mark.benchmark_data("datasets", ...)` is skipped, saying what is missing where, when one of
the named parts is not there. CI has ../shared and sets HVAR_REQUIRE_BENCHMARK_DATA=1 (`.ci/run`), so
that a moved or emptied folder fails the run instead of quietly skipping the benchmarks.
"""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from hvar.niqe import PARAMS_FILE
from hvar.paths import data_root, metrics_root
from hvar.train_floor import SPAN_WEIGHTS

REQUIRE = "HVAR_REQUIRE_BENCHMARK_DATA"

# Each part of ../shared a test can ask for: the path whose presence stands for it, and how to point
# at it. Resolved when a test starts, so HVAR_DATA_ROOT and HVAR_METRICS_ROOT are read as they are then.
PARTS: dict[str, tuple[Callable[[], Path], str]] = {
    "datasets": (lambda: data_root() / "dev", "set HVAR_DATA_ROOT to shared/datasets"),
    "metrics": (lambda: metrics_root() / PARAMS_FILE, "set HVAR_METRICS_ROOT to shared/metrics"),
    "pretrained": (lambda: SPAN_WEIGHTS, "read from shared/pretrained beside the repository"),
}


def require(*parts: str) -> None:
    """Returns where every part is present; else skips the test, or fails it when CI requires the data."""
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown benchmark data {part!r}; one of {sorted(PARTS)}")
        where, hint = PARTS[part]
        path = where()
        if path.exists():
            continue
        missing = f"benchmark data missing: no {path} ({hint})"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{missing}; {REQUIRE}=1 requires it", pytrace=False)
        pytest.skip(f"{missing}; {REQUIRE}=1 fails instead of skipping")
