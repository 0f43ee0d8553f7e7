"""A held-out test set the model never trained or was tuned on: 12 photos of OpenCV's sample data, as
Debian packages them (`opencv-doc`), checked byte for byte and saved as PNG under `<out>/HR`.

Set5 and Set14 are the team's dev sets: every choice of the floor's training was read off them. The
issue asks for the same numbers on held-out images, and `../shared` has none with a ground truth, so this
takes them from a package every Debian mirror carries, pinned by version and checksums (the build fails
rather than measure other pictures). The images are for measurement only, as Set5 / Set14 are: never
shipped, committed or shown (OpenCV's sample data carries no licence of its own).

    apt-get download opencv-doc=4.6.0+dfsg-12
    python -m hvar.heldout --deb opencv-doc_4.6.0+dfsg-12_all.deb --out .data/OpenCV12
    python -m hvar.eval_sr --run ../gpu-runner/models/hvar --dataset .data/OpenCV12 --scale 2 4
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tarfile
from pathlib import Path

from PIL import Image

NAME = "OpenCV12"
PACKAGE = "opencv-doc_4.6.0+dfsg-12_all.deb"
PACKAGE_SHA256 = "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"
DATA = "./usr/share/doc/opencv-doc/examples/data/"
# Colour photos of at least 480 px, none of Set5 / Set14's (baboon and lena are left out), no webcam
# frames too dark or noisy to be ground truth. file -> sha256 of the file as packaged.
PHOTOS = {
    "aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    "aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    "board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    "building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    "butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    "fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    "graf1.png": "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
    "home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    "leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    "messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    "squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ar_members(archive: bytes) -> dict[str, bytes]:
    """The files of an `ar` archive (a .deb is one: debian-binary, control.tar.*, data.tar.*)."""
    if not archive.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive (a .deb starts with !<arch>)")
    members, at = {}, 8
    while at + 60 <= len(archive):
        header = archive[at : at + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        members[name] = archive[at + 60 : at + 60 + size]
        at += 60 + size + size % 2  # members are 2-byte aligned
    return members


def package_files(deb: bytes, names: list[str]) -> dict[str, bytes]:
    """`names` (paths inside the package) read out of the .deb's data archive; KeyError if one is missing."""
    data = next((body for name, body in ar_members(deb).items() if name.startswith("data.tar")), None)
    if data is None:
        raise ValueError("the package has no data.tar member")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {name: tar.extractfile(tar.getmember(name)).read() for name in names}


def build(
    deb_path: Path, out: Path, photos: dict[str, str] = PHOTOS, package_sha256: str = PACKAGE_SHA256
) -> list[Path]:
    """Checks the package and each photo against their pinned sha256, then writes `<out>/HR/<stem>.png`."""
    deb = deb_path.read_bytes()
    if sha256(deb) != package_sha256:
        raise ValueError(f"{deb_path} is not {PACKAGE} (sha256 {sha256(deb)}, expected {package_sha256})")
    files = package_files(deb, [DATA + name for name in photos])
    for name, expected in photos.items():  # all checked before anything is written
        if sha256(files[DATA + name]) != expected:
            raise ValueError(f"{name}: sha256 {sha256(files[DATA + name])}, expected {expected}")
    (out / "HR").mkdir(parents=True, exist_ok=True)
    written = []
    for name in photos:
        path = out / "HR" / f"{Path(name).stem}.png"
        with Image.open(io.BytesIO(files[DATA + name])) as image:
            image.convert("RGB").save(path)
        written.append(path)
    (out / "README.md").write_text(
        f"# {NAME}: held-out photos (measurement only)\n\n{len(written)} photos of OpenCV's sample data from "
        f"Debian's {PACKAGE} (sha256 {package_sha256}), `{DATA}`, saved as PNG by `python -m hvar.heldout`. "
        "Never ship, commit or show them.\n"
    )
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--deb", type=Path, required=True, help=f"{PACKAGE} (apt-get download opencv-doc=4.6.0+dfsg-12)"
    )
    ap.add_argument("--out", type=Path, default=Path(".data/OpenCV12"))
    args = ap.parse_args()
    if not args.deb.is_file():
        ap.error(f"--deb {args.deb}: no such file (apt-get download opencv-doc=4.6.0+dfsg-12 fetches it)")
    try:
        written = build(args.deb, args.out)
    except (ValueError, KeyError) as e:  # another package, a changed photo, or one missing: nothing written
        ap.error(str(e))
    print(f"{NAME}: {len(written)} photos in {args.out / 'HR'}")


if __name__ == "__main__":
    main()
