"""Where the data is: ../shared beside the repository unless the environment says otherwise."""

from pathlib import Path

import pytest

import hvar
from hvar.paths import data_root, list_images, metrics_root


def test_data_root_honours_the_environment(photo_root):
    assert data_root() == photo_root


def test_default_roots_are_in_shared_beside_the_repo(monkeypatch):
    monkeypatch.delenv("HVAR_DATA_ROOT", raising=False)
    monkeypatch.delenv("HVAR_METRICS_ROOT", raising=False)
    repo_root = Path(hvar.__file__).resolve().parents[2]  # the parent of model/
    assert data_root() == repo_root.parent / "shared" / "datasets"
    assert metrics_root() == repo_root.parent / "shared" / "metrics"


def test_images_are_listed_sorted_from_subfolders_too(tmp_path):
    for name in ("b/2.PNG", "a/1.jpg", "c.webp", "d.tif", "notes.txt", "e.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == [
        "a/1.jpg", "b/2.PNG", "c.webp", "d.tif"
    ]  # fmt: skip


def test_a_folder_without_images_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="HVAR_DATA_ROOT"):
        list_images(tmp_path)
