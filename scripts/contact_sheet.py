"""Contact sheet of synthetic (input, target) pairs, for judging realism by eye.

Writes ``docs/synthetic_pairs.jpg``: 12 pairs (4 under-, 4 over-exposed, 4 mixed) made from
validation photos listed in ``docs/training_photos.csv``, each input labelled with its
direction and EV. Pairs are synthesised at the size shown, so noise and JPEG artefacts look
as they would at full resolution.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from exposure_slot.synthesis import ExposureParams, make_pair

TILE = (390, 260)
PAIRS_PER_ROW = 3
LABEL_HEIGHT = 22


def load_tile(path: Path) -> np.ndarray:
    """Centre-crop a photo to the tile's aspect ratio and resize it to the tile size."""
    image = Image.open(path).convert("RGB")
    aspect = TILE[0] / TILE[1]
    width = min(image.width, round(image.height * aspect))
    height = round(width / aspect)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    image = image.crop((left, top, left + width, top + height))
    return np.asarray(image.resize(TILE, Image.Resampling.LANCZOS), dtype=np.float32) / 255


def label(params: ExposureParams) -> str:
    """Short description of a sample's exposure error."""
    text = f"{params.direction} EV {params.ev:+.1f}"
    if abs(params.ramp_ev) >= 0.5:
        text += f", ramp {params.ramp_ev:+.1f}"
    if params.blob_ev:
        text += f", blob {params.blob_ev:+.1f}"
    return text + f", HDR x{1 + params.hdr_boost:.1f}"


def to_image(array: np.ndarray) -> Image.Image:
    """Float RGB in [0, 1] to a PIL image."""
    return Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    """Build the sheet from validation photos and save it."""
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=repo / "data" / "photos")
    parser.add_argument("--csv", type=Path, default=repo / "docs" / "training_photos.csv")
    parser.add_argument("--out", type=Path, default=repo / "docs" / "synthetic_pairs.jpg")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with args.csv.open(encoding="utf-8") as handle:
        names = [row["file"] for row in csv.DictReader(handle) if row["split"] == "val"]
    paths = [args.photos / name for name in names if (args.photos / name).exists()]
    if not paths:
        print(f"no validation photos in {args.photos}; run fetch_photos.py", file=sys.stderr)
        return 1

    rng = np.random.default_rng(args.seed)
    directions = ["under", "over", "mixed"]
    rows = -(-args.pairs // PAIRS_PER_ROW)
    cell_w, cell_h = 2 * TILE[0], TILE[1] + LABEL_HEIGHT
    sheet = Image.new("RGB", (PAIRS_PER_ROW * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for index in range(args.pairs):
        photo = load_tile(paths[index % len(paths)])
        inp, target, params = make_pair(photo, rng, directions[index % len(directions)])
        x, y = (index % PAIRS_PER_ROW) * cell_w, (index // PAIRS_PER_ROW) * cell_h
        sheet.paste(to_image(inp), (x, y))
        sheet.paste(to_image(target), (x + TILE[0], y))
        draw.text((x + 4, y + TILE[1] + 3), label(params), fill="black", font=font)
        draw.text((x + TILE[0] + 4, y + TILE[1] + 3), "target", fill="black", font=font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
