"""Crops comparing fast mode with exact mode where halos would show: docs/highres/*.jpg.

Each photo is brought to 4000×3000 as in benchmarks/highres.py and corrected in both
modes with the default weights. Three 256×256 crops are picked automatically: the two
windows where the correction itself (smoothed, so that texture does not count) changes
most, i.e. the edges between regions the network treats differently, where an edge-unaware
transfer would leave halos; and the
window where fast mode differs most from exact mode. Each crop is saved at 1:1 as a strip:
input | exact | fast | |fast − exact| × 8. Regenerate after changing the weights::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/highres_crops.py --photos PHOTO ...

(about 2 minutes per photo on one core; the photos of the README are the ones of
benchmarks/highres.py.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from highres import SIZES, fit, read_photo, sample_photos

CROP = 256
OUT = Path(__file__).resolve().parents[1] / "docs" / "highres"


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def block_scores(values: np.ndarray, reduce: str) -> np.ndarray:
    """Per ``CROP``-sized block (half-overlapping) of ``values``: std or max."""
    h, w = values.shape
    step = CROP // 2
    scores = np.zeros(((h - CROP) // step + 1, (w - CROP) // step + 1), np.float32)
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            block = values[i * step : i * step + CROP, j * step : j * step + CROP]
            scores[i, j] = block.std() if reduce == "std" else block.max()
    return scores


def pick(scores: np.ndarray, count: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Top-scoring blocks as pixel corners, not overlapping each other or ``taken``."""
    step = CROP // 2
    chosen: list[tuple[int, int]] = []
    for flat in np.argsort(scores, axis=None)[::-1]:
        y, x = (int(v) * step for v in np.unravel_index(flat, scores.shape))
        if all(abs(y - ty) >= CROP or abs(x - tx) >= CROP for ty, tx in taken + chosen):
            chosen.append((y, x))
        if len(chosen) == count:
            break
    return chosen


def strip(images: list[np.ndarray], labels: list[str]) -> Image.Image:
    canvas = Image.fromarray(np.concatenate(images, axis=1))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.rectangle((i * CROP, 0, i * CROP + 8 + 7 * len(label), 16), fill=(0, 0, 0))
        draw.text((i * CROP + 4, 2), label, fill=(255, 255, 255))
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, nargs="*", help="photos (default: samples)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from exposure_slot import ExposureCorrector

    corrector = ExposureCorrector(device="cpu")
    photos = [(p.stem, read_photo(p)) for p in args.photos] if args.photos else sample_photos()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rgb in photos:
        img = fit(rgb, SIZES[12])
        exact, fast = corrector(img, mode="exact"), corrector(img, mode="fast")
        change = cv2.GaussianBlur(luma(exact) - luma(img), (0, 0), 8)
        change = block_scores(change, "std")
        error = np.abs(fast.astype(np.float32) - exact.astype(np.float32)).max(axis=2)
        edges = pick(change, 2, [])
        worst = pick(block_scores(error, "max"), 1, edges)
        for kind, (y, x) in [("edge", edges[0]), ("edge", edges[1]), ("worst", worst[0])]:
            window = (slice(y, y + CROP), slice(x, x + CROP))
            diff = np.clip(np.abs(fast[window].astype(int) - exact[window]) * 8, 0, 255)
            crops = [img[window], exact[window], fast[window], diff.astype(np.uint8)]
            labels = ["input", "exact", "fast", "|fast-exact| x8"]
            path = args.out / f"{name.split('_')[0].lower()}_{kind}_{y}_{x}.jpg"
            strip(crops, labels).save(path, quality=88)
            print(f"{path}: max |fast - exact| {int(error[window].max())}/255")
    return 0


if __name__ == "__main__":
    sys.exit(main())
