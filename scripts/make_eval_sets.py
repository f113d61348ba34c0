"""Write the paired evaluation sets used for the results tables in docs/evaluation.md.

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
- ``scenes_ev0/`` and ``scenes_fused/``: the same for the held-out real HDR scenes of
  ``docs/hdr_scenes.csv`` (``scripts/fetch_hdr_scenes.py``), each rendered through every
  camera of ``CAMERAS`` (shoulder, toe, gamma, sensor noise) at ``SCENE_BRACKET_EVS`` around
  its well-exposed frame; inputs are noisy, references are made from the same bracket
  without noise. The brackets are kept in ``scene_brackets/`` and ``scene_brackets_clean/``.
- ``scenes_well/``: the validation targets themselves, the fusion of each noise-free
  bracket, as input and target (group ``well``): a well-exposed photo should be left nearly
  alone.
- ``scenes_test_ev0/``, ``scenes_test_fused/`` and ``scenes_test_well/``: the same for the
  test scenes of ``docs/hdr_scenes.csv`` (split ``test``), which no training run or choice
  of snapshot looks at: they report the weights finally chosen.
- ``exif_pairs/``: the two real photos of ``exif-samples`` taken with the camera's HDR mode
  off (input) and on (target), group ``camera-hdr``.

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

from exposure_slot.synthesis import (
    DIRECTIONS,
    ExposureParams,
    fuse,
    make_pair,
    well_exposed_bracket,
)

ROOT = Path(__file__).resolve().parent.parent
PHOTOS_CSV = ROOT / "docs" / "training_photos.csv"
SCENES_CSV = ROOT / "docs" / "hdr_scenes.csv"
BRACKET = re.compile(r"^(?P<scene>.+)__ev(?P<ev>[+-]\d+)$")
# Camera curves of the validation brackets: (shoulder_c, toe, gamma, shot noise, read noise).
CAMERAS = {
    "soft": (0.8, 0.005, 2.0, 1e-3, 5e-4),
    "mid": (0.9, 0.01, 2.2, 2e-3, 1e-3),
    "hard": (0.96, 0.02, 2.4, 3e-3, 1.5e-3),
}


def _save(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


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


def real_hdr_set(real: Path, out: Path, fused: bool = False, clean: Path | None = None) -> int:
    """Pairs of real-HDR brackets against a reference; returns the number of pairs.

    The reference is the scene's EV 0 rendering (one global exposure: what a camera's
    correctly exposed frame looks like), or with ``fused`` the exposure fusion of all its
    brackets (Mertens et al., OpenCV), which keeps the windows' and the shadows' detail at
    once, like the fused references of SICE that the paper scores against. With ``clean``
    (a folder of the same brackets without sensor noise) the reference is made from those,
    as a reference is shot at low ISO: fusing noisy frames favours the noisy dark ones
    (noise reads as contrast) and comes out darker.
    """
    inputs, targets = _fresh(out)
    groups = {}
    references = _brackets(clean) if clean is not None else None
    for scene, brackets in _brackets(real).items():
        source = references[scene] if references is not None else brackets
        if fused:
            reference = fuse([_load(path) for _, path in sorted(source.items())])
        for ev, path in brackets.items():
            if ev == 0:
                continue
            shutil.copyfile(path, inputs / path.name)
            if fused:
                _save(reference, targets / path.name)
            else:
                shutil.copyfile(source[0], targets / path.name)
            groups[path.stem] = "under" if ev < 0 else "over"
    _write_groups(out, groups)
    return len(groups)


def scene_brackets(
    hdr: Path, out: Path, long_side: int, noise: bool = True, split: str = "val"
) -> int:
    """Render the brackets of a split's scenes through every camera (with or without sensor
    noise); returns their number."""
    with SCENES_CSV.open(newline="") as handle:
        names = sorted(row["file"] for row in csv.DictReader(handle) if row["split"] == split)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, name in enumerate(names):
        radiance = np.load(hdr / name).astype(np.float32)
        h, w = radiance.shape[:2]
        scale = min(1.0, long_side / max(h, w))
        size = (round(w * scale), round(h * scale))
        radiance = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
        for j, (camera, (shoulder, toe, gamma, shot, read)) in enumerate(CAMERAS.items()):
            params = ExposureParams(
                "under",
                0.0,
                shoulder_c=shoulder,
                toe=toe,
                gamma=gamma,
                noise_shot=shot,
                noise_read=read,
                seed=1000 * i + j,
            )
            for ev, frame in well_exposed_bracket(radiance, params, noise).items():
                _save(frame, out / f"{Path(name).stem}-{camera}__ev{ev:+d}.png")
    return len(names) * len(CAMERAS)


def well_exposed_set(clean: Path, out: Path) -> int:
    """Each fused reference as its own target; returns the number of pairs."""
    inputs, targets = _fresh(out)
    groups = {}
    for scene, brackets in _brackets(clean).items():
        reference = fuse([_load(path) for _, path in sorted(brackets.items())])
        _save(reference, inputs / f"{scene}.png")
        _save(reference, targets / f"{scene}.png")
        groups[scene] = "well"
    _write_groups(out, groups)
    return len(groups)


def exif_pairs(pairs: Path, out: Path) -> int:
    """The camera-HDR-off/on photo pairs of fetch_hdr_scenes.py; returns their number."""
    inputs, targets = _fresh(out)
    groups = {}
    for path in sorted(pairs.glob("*__input.png")):
        stem = path.name.removesuffix("__input.png")
        shutil.copyfile(path, inputs / f"{stem}.png")
        shutil.copyfile(pairs / f"{stem}__target.png", targets / f"{stem}.png")
        groups[stem] = "camera-hdr"
    _write_groups(out, groups)
    return len(groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "photos")
    parser.add_argument("--real", type=Path, default=ROOT / "data" / "real")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "eval")
    parser.add_argument("--per-direction", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--hdr", type=Path, default=ROOT / "data" / "hdr")
    parser.add_argument("--pairs", type=Path, default=ROOT / "data" / "real_pairs")
    parser.add_argument(
        "--scene-long-side", type=int, default=640, help="long side of the scene brackets"
    )
    parser.add_argument(
        "--only", choices=("all", "scenes"), default="all", help="scenes: the real-scene sets"
    )
    args = parser.parse_args()
    for split, suffix in (("val", ""), ("test", "_test")):
        brackets = args.out / f"scene_brackets{suffix}"
        clean = args.out / f"scene_brackets{suffix}_clean"
        n = scene_brackets(args.hdr, brackets, args.scene_long_side, split=split)
        scene_brackets(args.hdr, clean, args.scene_long_side, noise=False, split=split)
        print(f"{n} brackets of {split} HDR scenes in {brackets} (without noise: {clean})")
        for kind, fused in (("ev0", False), ("fused", True)):
            name = f"scenes{suffix}_{kind}"
            n = real_hdr_set(brackets, args.out / name, fused=fused, clean=clean)
            print(f"{n} real-scene bracket pairs in {args.out / name}")
        n = well_exposed_set(clean, args.out / f"scenes{suffix}_well")
        print(f"{n} well-exposed frames in {args.out / f'scenes{suffix}_well'}")
    n = exif_pairs(args.pairs, args.out / "exif_pairs")
    print(f"{n} real camera-HDR pairs in {args.out / 'exif_pairs'}")
    if args.only == "scenes":
        return 0
    n = synthetic_set(args.photos, args.out / "synthetic", args.per_direction, args.seed)
    print(f"{n} synthetic pairs in {args.out / 'synthetic'}")
    n = real_hdr_set(args.real, args.out / "real_hdr")
    print(f"{n} real-HDR bracket pairs in {args.out / 'real_hdr'}")
    n = real_hdr_set(args.real, args.out / "real_fused", fused=True)
    print(f"{n} real-HDR bracket pairs against the fused brackets in {args.out / 'real_fused'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
