"""README pictures: before/after and slot maps of real, badly exposed photos.

Run as ``python scripts/readme_pictures.py`` (after ``scripts/fetch_photos.py``,
``scripts/fetch_real_brackets.py`` and ``scripts/fetch_hdr_scenes.py``); re-run it whenever the
default weights change. It writes into ``docs/images/``:

* ``before_after.jpg``: input | corrected, one row per photo; for the two camera pairs also
  the same scene shot with the camera's own HDR mode;
* ``slot_maps.jpg``: input | corrected | main slots | sub slots, for two of them;
* ``CREDITS.md``: where each photo comes from, its licence, and the weights used.

The photos are dark or bright as they were shot, not darkened by us: two validation photos
(never trained on) and one training photo from docs/training_photos.csv, and two brackets
rendered from the real HDR capture of docs/real_photos.csv (real scene light, exposure set
by a fixed camera curve), and two real photos of exif-samples shot with the camera's HDR
mode off, beside the camera's HDR shot (docs/hdr_scenes.csv, never trained on). The network
sees each photo at ``--long-side`` pixels, the size the pictures show.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from exposure_slot import ExposureCorrector
from exposure_slot.files import read_image
from exposure_slot.visualize import correction_montage, fit_long_side, montage, stack, to_pil

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 300_000
"""Largest picture file; JPEG quality is lowered until it fits."""


@dataclass(frozen=True)
class Photo:
    """A README photo: file name, the record listing it, and what is wrong with it."""

    file: str
    record: (
        str  # "photos" (training_photos.csv), "real" (real_photos.csv), "pairs" (hdr_scenes.csv)
    )
    caption: str
    slots: bool = False  # also shown in slot_maps.jpg
    camera_hdr: str | None = None  # the same scene shot with the camera's HDR mode


PHOTOS = (
    Photo("kphotoalbum__bar55_2.jpg", "photos", "dim bar, as shot", slots=True),
    Photo("enlightenment-data__Lichen-Branches.jpg", "photos", "dark forest, as shot"),
    Photo("libjxl-testdata__hdr_room__ev-3.png", "real", "real HDR scene, -3 EV"),
    Photo("libjxl-testdata__hdr_room__ev+2.png", "real", "real HDR scene, +2 EV", slots=True),
    Photo("lomiri-wallpapers-16.04__free_by_Peter_Nerlich.jpg", "photos", "bright lamps, as shot"),
    Photo("exif-samples__canon__input.png", "pairs", "Canon, as shot",
          camera_hdr="exif-samples__canon__target.png"),
    Photo("exif-samples__iphone__input.png", "pairs", "iPhone, as shot",
          camera_hdr="exif-samples__iphone__target.png"),
)  # fmt: skip
RECORDS = {"photos": "training_photos.csv", "real": "real_photos.csv", "pairs": "hdr_scenes.csv"}
"""The record (in docs/) of each kind of photo."""


def records(csv_path: Path) -> dict[str, dict[str, str]]:
    with csv_path.open(encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def save_jpeg(picture: Image.Image, path: Path) -> int:
    """Save as JPEG under MAX_BYTES (quality 88 down to 50); returns the size in bytes."""
    for quality in range(88, 49, -6):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def credits(photos: list[tuple[Photo, dict[str, str]]], corrector: ExposureCorrector) -> str:
    info = corrector.weights_info
    lines = [
        "# Credits for the README pictures",
        "",
        "Made by `python scripts/readme_pictures.py` with the weights "
        f"`{info.name}` (sha256 `{info.sha256 or 'unknown'}`, licence {info.licence or 'unstated'}).",  # noqa: E501
        "Each picture is derived from the photos below and is under the same licence as them.",
        "",
        "| photo | split | source package | licence | author / copyright |",
        "|---|---|---|---|---|",
    ]
    for photo, row in photos:
        # training_photos.csv and real_photos.csv name a Debian package, hdr_scenes.csv a source
        source = row.get("source_package") or row["source"]
        version = row.get("package_version") or row["source_version"]
        files = photo.file + (f" and {photo.camera_hdr}" if photo.camera_hdr else "")
        lines.append(
            f"| {files} ({photo.caption}) | {row['split']} | {source} {version} "
            f"| {row['licence']} | {row['author_or_copyright']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=REPO / "data" / "photos")
    parser.add_argument("--real", type=Path, default=REPO / "data" / "real")
    parser.add_argument("--pairs", type=Path, default=REPO / "data" / "real_pairs")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--weights", default="default", help="weights to show (default: bundled)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: best available)")
    parser.add_argument("--long-side", type=int, default=480, help="size the network sees")
    parser.add_argument("--height", type=int, default=200, help="height of each picture row")
    args = parser.parse_args(argv)

    folders = {"photos": args.photos, "real": args.real, "pairs": args.pairs}
    tables = {kind: records(REPO / "docs" / name) for kind, name in RECORDS.items()}
    wanted = [(p.record, name) for p in PHOTOS for name in (p.file, p.camera_hdr) if name]
    missing = [name for kind, name in wanted if not (folders[kind] / name).is_file()]
    if missing:
        print(
            f"missing {', '.join(missing)}: run scripts/fetch_photos.py, "
            "scripts/fetch_real_brackets.py and scripts/fetch_hdr_scenes.py first "
            "(or pass --photos / --real / --pairs)",
            file=sys.stderr,
        )
        return 1

    corrector = ExposureCorrector(args.weights, device=args.device)
    rows, slot_rows = [], []
    for photo in PHOTOS:
        rgb = fit_long_side(read_image(folders[photo.record] / photo.file).rgb, args.long_side)
        corrected = corrector(rgb)
        panels, titles = [to_pil(rgb), to_pil(corrected)], [photo.caption, "corrected"]
        if photo.camera_hdr:
            camera = read_image(folders[photo.record] / photo.camera_hdr).rgb
            panels.append(to_pil(fit_long_side(camera, args.long_side)))
            titles.append("camera's HDR mode")
        rows.append(montage(panels, titles, args.height))
        if photo.slots:
            levels = corrector.slot_maps(rgb).levels
            slot_rows.append(correction_montage(rgb, corrected, levels, height=args.height))
        print(f"{photo.file}: {rgb.shape[1]}x{rgb.shape[0]}", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, picture in (("before_after.jpg", stack(rows)), ("slot_maps.jpg", stack(slot_rows))):
        size = save_jpeg(picture, args.out / name)
        print(f"wrote {args.out / name} ({picture.width}x{picture.height}, {size} bytes)")
    used = [(p, tables[p.record][p.file]) for p in PHOTOS]
    (args.out / "CREDITS.md").write_text(credits(used, corrector), encoding="utf-8")
    print(f"wrote {args.out / 'CREDITS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
