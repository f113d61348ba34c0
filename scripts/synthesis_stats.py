"""Brightness statistics of synthetic exposure errors, to compare with real ones.

Real badly exposed photos (TRAINING-NOTES.md): mean luminance of under-exposed frames has
5th-95th percentiles 0.09-0.19 (median 0.12), over-exposed 0.67-0.84 (median 0.78), and the
99th-percentile luminance of under-exposed frames has median about 0.53. The notes give no
shadow statistics, so the script also measures the real brackets of
``scripts/fetch_real_brackets.py`` (``--real``, if present): their 10th percentile and share
of black pixels (< 2/255) show how much of a real dark frame a camera leaves black. This
script draws ``--samples`` pairs per direction from the photos in ``--photos`` (random crops
at random scale, like training) and prints the same statistics for the synthetic inputs
(medians over samples for p10, p99 and black).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from exposure_slot.synthesis import DIRECTIONS, luminance, make_pair


def load_photos(folder: Path, limit: int) -> list[np.ndarray]:
    """Load up to ``limit`` photos, downsized to short side 256 to keep this fast."""
    photos = []
    for path in sorted(folder.glob("*.jpg"))[:limit]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = 256 / min(bgr.shape[:2])
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    return photos


def shadow_stats(lum: np.ndarray) -> tuple[float, float, float]:
    """10th and 99th percentile of a luminance image and its share of black (< 2/255) pixels."""
    p10, p99 = np.percentile(lum, [10, 99])
    return float(p10), float(p99), float(np.mean(lum < 2 / 255))


def random_crop(photo: np.ndarray, rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A square crop at a random scale (half of the time the whole short side), resized."""
    short = min(photo.shape[:2])
    side = short if rng.random() < 0.5 else int(rng.uniform(0.3, 1.0) * short)
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    crop = photo[y : y + side, x : x + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    """Print mean-luminance and p99-luminance percentiles per direction."""
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=repo / "data" / "photos")
    parser.add_argument("--real", type=Path, default=repo / "data" / "real")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--limit", type=int, default=1000, help="most photos to load")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    photos = load_photos(args.photos, args.limit)
    if not photos:
        print(f"no photos in {args.photos}; run scripts/fetch_photos.py first", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    targets = []
    print(f"{len(photos)} photos, {args.samples} samples per direction")
    print(
        f"{'':8s} {'mean lum p5':>11s} {'median':>7s} {'p95':>6s}   {'p10':>5s} {'p99':>5s}"
        f" {'black':>5s}   global EV p5 / median / p95"
    )
    for direction in DIRECTIONS:
        means, shadows, evs = [], [], []
        for _ in range(args.samples):
            photo = random_crop(photos[int(rng.integers(len(photos)))], rng)
            inp, target, params = make_pair(photo, rng, direction)
            evs.append(params.ev)
            lum = luminance(inp)
            means.append(lum.mean())
            shadows.append(shadow_stats(lum))
            targets.append(luminance(target).mean())
        p5, p50, p95 = np.percentile(means, [5, 50, 95])
        ev5, ev50, ev95 = np.percentile(evs, [5, 50, 95])
        p10, p99, black = np.median(shadows, axis=0)
        print(
            f"{direction:8s} {p5:11.3f} {p50:7.3f} {p95:6.3f}   {p10:5.3f} {p99:5.3f} {black:5.3f}"
            f"   EV {ev5:+.2f} / {ev50:+.2f} / {ev95:+.2f}"
        )
    p5, p50, p95 = np.percentile(targets, [5, 50, 95])
    print(f"{'targets':8s} {p5:11.3f} {p50:7.3f} {p95:6.3f}")
    print("real (TRAINING-NOTES): under 0.09/0.12/0.19, p99 median 0.53; over 0.67/0.78/0.84;")
    print("                       good references 0.37-0.58")
    for path in sorted(args.real.glob("*__ev-*.png")):
        lum = luminance(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) / 255.0)
        p10, p99, black = shadow_stats(lum)
        print(
            f"real {path.stem}: mean {lum.mean():.3f}, p10 {p10:.3f}, p99 {p99:.3f},"
            f" black {black:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
