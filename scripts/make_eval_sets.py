"""Write the paired evaluation sets used for the README's results table.

Run as ``python scripts/make_eval_sets.py --photos data/photos --real data/real --out data/eval``
after ``scripts/fetch_photos.py`` and ``scripts/fetch_real_brackets.py``. Writes two sets in
the layout ``exposure-slot eval INPUT_DIR TARGET_DIR --groups groups.csv`` reads:

- ``synthetic/``: every validation photo of ``docs/training_photos.csv`` (never trained on)
  with ``--per-direction`` seeded synthetic exposure errors per direction (under, over,
  mixed), made by :func:`exposure_slot.synthesis.make_pair`; the target is the photo.
- ``real_hdr/``: the brackets rendered from the real HDR capture (``ev-4`` … ``ev+3``), each
  scored against the ``ev+0`` rendering; negative EVs are ``under``, positive ``over``.
- ``real_fused/``: the same brackets scored against the exposure fusion of all of them (a
  reference with local tone mapping, like SICE's).

Inputs and targets are lossless PNGs with the same stem. The output is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from exposure_slot.synthesis import DIRECTIONS, make_pair

ROOT = Path(__file__).resolve().parent.parent
PHOTOS_CSV = ROOT / "docs" / "training_photos.csv"
BRACKET = re.compile(r"^(?P<scene>.+)__ev(?P<ev>[+-]\d+)$")


def _save(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)


def _fresh(folder: Path) -> tuple[Path, Path]:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "input").mkdir(parents=True)
    (folder / "target").mkdir(parents=True)
    return folder / "input", folder / "target"


def _write_groups(folder: Path, groups: dict[str, str]) -> None:
    with (folder / "groups.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "group"])
        writer.writerows(sorted(groups.items()))


def synthetic_set(photos: Path, out: Path, per_direction: int, seed: int) -> int:
    """Synthetic pairs from the validation photos; returns the number of pairs."""
    with PHOTOS_CSV.open(newline="") as handle:
        names = sorted(row["file"] for row in csv.DictReader(handle) if row["split"] == "val")
    inputs, targets = _fresh(out)
    groups = {}
    for i, name in enumerate(names):
        photo = np.asarray(Image.open(photos / name).convert("RGB"), np.float32) / 255
        for j, direction in enumerate(DIRECTIONS):
            for k in range(per_direction):
                rng = np.random.default_rng([seed, i, j, k])
                inp, target, _ = make_pair(photo, rng, direction)
                stem = f"{Path(name).stem}__{direction}{k}"
                _save(inp, inputs / f"{stem}.png")
                _save(target, targets / f"{stem}.png")
                groups[stem] = direction
    _write_groups(out, groups)
    return len(groups)


def _brackets(real: Path) -> dict[str, dict[int, Path]]:
    """The rendered brackets per scene: ``{scene: {ev: path}}``."""
    scenes: dict[str, dict[int, Path]] = {}
    for path in sorted(real.glob("*__ev*.png")):
        match = BRACKET.match(path.stem)
        if match is not None:
            scenes.setdefault(match["scene"], {})[int(match["ev"])] = path
    return scenes


def real_hdr_set(real: Path, out: Path, fused: bool = False) -> int:
    """Pairs of real-HDR brackets against a reference; returns the number of pairs.

    The reference is the scene's EV 0 rendering (one global exposure: what a camera's
    correctly exposed frame looks like), or with ``fused`` the exposure fusion of all its
    brackets (Mertens et al., OpenCV), which keeps the windows' and the shadows' detail at
    once, like the fused references of SICE that the paper scores against.
    """
    inputs, targets = _fresh(out)
    groups = {}
    for brackets in _brackets(real).values():
        if fused:
            frames = [cv2.imread(str(path)) for _, path in sorted(brackets.items())]
            merged = cv2.createMergeMertens().process(frames)
            reference = np.round(np.clip(merged, 0, 1) * 255).astype(np.uint8)
        for ev, path in brackets.items():
            if ev == 0:
                continue
            shutil.copyfile(path, inputs / path.name)
            if fused:
                cv2.imwrite(str(targets / path.name), reference)
            else:
                shutil.copyfile(brackets[0], targets / path.name)
            groups[path.stem] = "under" if ev < 0 else "over"
    _write_groups(out, groups)
    return len(groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "photos")
    parser.add_argument("--real", type=Path, default=ROOT / "data" / "real")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "eval")
    parser.add_argument("--per-direction", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()
    n = synthetic_set(args.photos, args.out / "synthetic", args.per_direction, args.seed)
    print(f"{n} synthetic pairs in {args.out / 'synthetic'}")
    n = real_hdr_set(args.real, args.out / "real_hdr")
    print(f"{n} real-HDR bracket pairs in {args.out / 'real_hdr'}")
    n = real_hdr_set(args.real, args.out / "real_fused", fused=True)
    print(f"{n} real-HDR bracket pairs against the fused brackets in {args.out / 'real_fused'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
