"""Where files are: the repository, and `../shared` beside it (datasets, NIQE parameters, pretrained
weights), which is read in place and never downloaded; and which files of a folder are images.

`$HVAR_DATA_ROOT` and `$HVAR_METRICS_ROOT` point at copies elsewhere (a GPU machine's carried folder).
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # model/hvar/paths.py -> the repository
SHARED = REPO.parent / "shared"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def data_root() -> Path:
    """`$HVAR_DATA_ROOT`, else `../shared/datasets`: `train/` and `dev/<set>/HR`."""
    env = os.environ.get("HVAR_DATA_ROOT")
    return Path(env) if env else SHARED / "datasets"


def metrics_root() -> Path:
    """`$HVAR_METRICS_ROOT`, else `../shared/metrics` (NIQE's pristine model)."""
    env = os.environ.get("HVAR_METRICS_ROOT")
    return Path(env) if env else SHARED / "metrics"


def list_images(folder: str | Path) -> list[Path]:
    """Every image under `folder`, subfolders included, sorted; FileNotFoundError where there is none."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise FileNotFoundError(f"no images under {folder} (set HVAR_DATA_ROOT to shared/datasets?)")
    return paths
