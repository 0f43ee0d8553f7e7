"""The held-out set is built only from the pinned package and photos, byte for byte."""

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from hvar import heldout


def jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def ar_member(name: str, body: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
    return header + body + (b"\n" if len(body) % 2 else b"")


def deb(files: dict[str, bytes]) -> bytes:
    """A .deb as dpkg writes one: an ar archive of debian-binary, control and data tarballs."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(heldout.DATA + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    parts = [("debian-binary", b"2.0\n"), ("control.tar.xz", b"x"), ("data.tar.xz", data.getvalue())]
    return b"!<arch>\n" + b"".join(ar_member(n, b) for n, b in parts)


@pytest.fixture
def package(tmp_path):
    files = {"a.jpg": jpeg(0), "b.jpg": jpeg(1), "other.jpg": jpeg(2)}
    path = tmp_path / "pkg.deb"
    path.write_bytes(deb(files))
    photos = {name: heldout.sha256(files[name]) for name in ("a.jpg", "b.jpg")}
    return path, photos, heldout.sha256(path.read_bytes())


def test_writes_each_pinned_photo_as_png_with_its_pixels(package, tmp_path):
    path, photos, digest = package
    written = heldout.build(path, tmp_path / "set", photos, digest)
    assert [p.name for p in written] == ["a.png", "b.png"]
    with Image.open(io.BytesIO(jpeg(0))) as original, Image.open(written[0]) as saved:
        assert np.array_equal(np.asarray(original), np.asarray(saved))
    assert (tmp_path / "set" / "README.md").is_file()


def test_refuses_another_package(package, tmp_path):
    path, photos, _ = package
    with pytest.raises(ValueError, match="sha256"):
        heldout.build(path, tmp_path / "set", photos, "0" * 64)
    assert not (tmp_path / "set").exists()


def test_refuses_a_photo_that_is_not_the_pinned_one(package, tmp_path):
    path, photos, digest = package
    with pytest.raises(ValueError, match="b.jpg"):
        heldout.build(path, tmp_path / "set", {**photos, "b.jpg": "0" * 64}, digest)
    assert not (tmp_path / "set").exists()  # not even the photo that was right


def test_refuses_a_package_without_the_photo(package, tmp_path):
    path, photos, digest = package
    with pytest.raises(KeyError):
        heldout.build(path, tmp_path / "set", {**photos, "missing.jpg": "0" * 64}, digest)


def test_the_command_refuses_a_missing_package_with_the_way_to_get_it(tmp_path, monkeypatch, capsys):
    argv = ["heldout", "--deb", str(tmp_path / "none.deb"), "--out", str(tmp_path / "set")]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit):
        heldout.main()
    assert "apt-get download" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()
