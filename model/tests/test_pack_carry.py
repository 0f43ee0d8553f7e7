"""gpu/pack_carry.py: the photos are split into parts that each fit beside the repository in one call."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "pack_carry", Path(__file__).parents[1] / "gpu" / "pack_carry.py"
)
pack_carry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack_carry)

PHOTOS = [(f"p{i}.jpg", size) for i, size in enumerate([900, 700, 650, 400, 300, 300, 200, 100])]


def test_every_photo_lands_in_exactly_one_part_and_no_part_is_over_its_budget():
    parts = pack_carry.split_by_size(PHOTOS, [1000, 1500])
    sizes = dict(PHOTOS)
    assert sorted(n for p in parts for n in p) == sorted(sizes)
    budgets = [1000] + [1500] * (len(parts) - 1)
    assert all(sum(sizes[n] for n in p) <= b for p, b in zip(parts, budgets, strict=True))


def test_parts_are_added_while_the_photos_do_not_fit():
    assert len(pack_carry.split_by_size(PHOTOS, [1000, 1500])) == 3  # 3,450 bytes: more than 2,500


def test_a_photo_larger_than_a_whole_call_is_refused():
    with pytest.raises(SystemExit, match="larger than a whole call"):
        pack_carry.split_by_size([("huge.jpg", 2000)], [1000, 1500])


def test_the_working_tree_counts_tracked_files():
    assert pack_carry.working_tree_bytes() > 1_000_000  # at least the shipped ONNX graphs


def test_the_repository_leaves_a_gpu_call_room_for_the_photos():
    """Every tracked byte travels with every device call; past this, the photos need a third call, one
    more chance for the machine (warm 30 s) to go back before training starts. Keep weights that are not
    shipped or trained from out of the tree (git history keeps them)."""
    room = pack_carry.CALL_LIMIT - pack_carry.MARGIN - pack_carry.working_tree_bytes()
    assert room >= pack_carry.MIN_ROOM, f"{room / 2**20:.1f} MiB left for photos per call"
