"""Split what a GPU training call needs into carry folders that each fit one device call.

A device call takes at most 64 MiB: the working tree (tracked and untracked-not-ignored files) plus its
carry. The repository alone is about 45 MiB and the 65 training photos 27 MiB, so the photos travel in
two parts, one call each (a test keeps the repository small enough for two: each call after the first
is one more chance for the machine, warm for only 30 s, to go back between calls), and stay on
the warm machine between calls (ignored paths already there are kept).
Part 1 also holds what is small: Set5, SPAN-ch28's weights and NIQE's parameters; every part holds the
photo manifest, so the last call can check that every photo arrived (train_floor.sh does).

    python gpu/pack_carry.py                   # from model/: writes .data/carry-1, .data/carry-2, ...

Then one device call per part, in order, each carrying its folder; all but the last run `true`, the last
runs `CARRY_PARTS=".data/carry-*" bash model/gpu/train_floor.sh` (see its header).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

CALL_LIMIT = 64 * 2**20  # bytes a device call takes in all
MARGIN = 2 * 2**20  # for files that change between packing and the call
# The least a call must leave: the photos (27 MiB) and part 1's small files (1.8 MiB) in two calls.
MIN_ROOM = 29 * 2**20 // 2
MODEL = Path(__file__).resolve().parents[1]
REPO = MODEL.parent


def working_tree_bytes(repo: Path = REPO) -> int:
    """What travels with every call: tracked and untracked-not-ignored files (links as links)."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    paths = (repo / n.decode() for n in names if n)
    return sum(p.lstat().st_size for p in paths if p.is_symlink() or p.is_file())


def split_by_size(files: list[tuple[str, int]], budgets: list[int]) -> list[list[str]]:
    """Largest first into the part with the most room left; one more part whenever none has room."""
    parts: list[list[str]] = [[] for _ in budgets]
    room = list(budgets)
    for name, size in sorted(files, key=lambda f: -f[1]):
        best = max(range(len(room)), key=room.__getitem__)
        if room[best] < size:
            if size > budgets[-1]:
                raise SystemExit(f"pack_carry: {name} ({size} bytes) is larger than a whole call's room")
            parts.append([])
            room.append(budgets[-1])
            best = len(room) - 1
        parts[best].append(name)
        room[best] -= size
    return parts


def pack(shared: Path, out: Path, tree_bytes: int) -> list[Path]:
    room = CALL_LIMIT - MARGIN - tree_bytes
    small = [shared / "datasets/dev/Set5", shared / "pretrained/span-ch28", shared / "metrics"]
    small_bytes = sum(f.stat().st_size for d in small for f in d.rglob("*") if f.is_file())
    train = shared / "datasets/train"
    photos = [(str(f.relative_to(train)), f.stat().st_size) for f in train.rglob("*.jpg")]
    parts = split_by_size(photos, [room - small_bytes, room])
    folders = []
    for i, names in enumerate(parts, start=1):
        folder = out / f"carry-{i}"
        shutil.rmtree(folder, ignore_errors=True)
        for name in names + ["MANIFEST.csv"] + [str(c.relative_to(train)) for c in train.rglob("COPYRIGHT")]:
            (folder / "datasets/train" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(train / name, folder / "datasets/train" / name)
        if i == 1:
            shutil.copytree(small[0], folder / "datasets/dev/Set5")
            shutil.copytree(small[1], folder / "span-ch28")
            shutil.copytree(small[2], folder / "metrics")
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"{folder}: {len(names)} photos, {size / 2**20:.1f} MiB (room {room / 2**20:.1f} MiB)")
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--out", type=Path, default=MODEL / ".data")
    args = ap.parse_args(argv)
    tree = working_tree_bytes()
    print(f"the working tree: {tree / 2**20:.1f} MiB of the call's {CALL_LIMIT / 2**20:.0f} MiB")
    for stale in args.out.glob("carry-*"):
        shutil.rmtree(stale)
    pack(args.shared, args.out, tree)


if __name__ == "__main__":
    main()
