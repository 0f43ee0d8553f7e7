"""Tests on ../shared's data skip where it is missing, and fail instead where CI requires it."""

import pytest
from benchmark_data import REQUIRE, require


@pytest.fixture
def no_datasets(tmp_path, monkeypatch):
    """HVAR_DATA_ROOT at a folder that is not there, as in a clone without ../shared."""
    monkeypatch.setenv("HVAR_DATA_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.delenv(REQUIRE, raising=False)
    return tmp_path / "nowhere"


def test_a_missing_part_skips_the_test_saying_where_it_looked_and_how_to_point_elsewhere(no_datasets):
    with pytest.raises(pytest.skip.Exception) as skipped:
        require("datasets")
    reason = str(skipped.value)
    assert str(no_datasets / "dev") in reason and "set HVAR_DATA_ROOT" in reason and REQUIRE in reason


def test_a_missing_part_fails_the_test_when_the_data_is_required(no_datasets, monkeypatch):
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE}=1 requires it"):
        require("datasets")


@pytest.mark.parametrize("required", ["", "1"])
def test_present_parts_let_the_test_run(photo_root, monkeypatch, required):
    monkeypatch.setenv(REQUIRE, required)
    require("datasets")  # photo_root has a dev/ folder


def test_every_part_is_checked_not_only_the_first(photo_root, monkeypatch):
    monkeypatch.setenv("HVAR_METRICS_ROOT", str(photo_root / "no-metrics"))
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-metrics"):
        require("datasets", "metrics")


def test_an_unknown_part_is_a_mistake_in_the_test_not_a_skip():
    with pytest.raises(ValueError, match="unknown benchmark data 'dataset'"):
        require("dataset")
