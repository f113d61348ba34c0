"""Do clipped skies and white walls stay neutral? Chroma of corrected over-exposed frames in
the regions that are near-white in the reference.

Run as ``python benchmarks/highlight_chroma.py [--weights W] [--set data/eval/scenes_fused]``
after ``scripts/make_eval_sets.py``. For every over-exposed input of the set, the mask is the
pixels whose reference is near-white (``NEAR_WHITE``: bright and nearly colourless), taken
only where the input is clipped there too (all channels above ``CLIPPED``): exactly the
regions a network must fill in without colour information. Prints, per method (the network
and auto-gamma), the mean chroma (max - min of R, G, B, in 8-bit levels) of the output and
of the reference in those regions, the mean R, G, B there, and the share of frames whose
mean chroma there exceeds ``CAST`` (a visible beige, pink or grey-blue cast).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from exposure_slot import ExposureCorrector
from exposure_slot.evaluation import auto_gamma
from exposure_slot.synthesis import luminance

NEAR_WHITE = (0.85, 0.06)
"""Reference luma at least 0.85 and chroma (max - min, 0-1) at most 0.06."""
CLIPPED = 0.97
CAST = 12.0
"""Mean chroma in 8-bit levels above which a white region shows a visible colour cast."""
MIN_PIXELS = 200


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel chroma, max - min of R, G, B (same scale as ``rgb``)."""
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def white_mask(inp: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pixels near-white in the reference and clipped in the input."""
    luma_min, chroma_max = NEAR_WHITE
    return (
        (luminance(reference) >= luma_min)
        & (chroma(reference) <= chroma_max)
        & np.all(inp >= CLIPPED, axis=-1)
    )


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--set", type=Path, default=Path("data/eval/scenes_fused"))
    args = parser.parse_args()
    with (args.set / "groups.csv").open(newline="") as handle:
        names = [r["name"] for r in csv.DictReader(handle) if r["group"] == "over"]
    corrector = ExposureCorrector(args.weights, device="cpu")
    methods = {"model": lambda rgb: corrector(rgb), "auto_gamma": auto_gamma}
    stats: dict[str, list[tuple[float, np.ndarray]]] = {m: [] for m in methods}
    reference_chroma = []
    for name in names:
        inp = load(args.set / "input" / f"{name}.png")
        reference = load(args.set / "target" / f"{name}.png")
        mask = white_mask(inp, reference)
        if mask.sum() < MIN_PIXELS:
            continue
        reference_chroma.append(255 * float(chroma(reference)[mask].mean()))
        for method, fn in methods.items():
            out = np.clip(fn(inp), 0, 1)
            stats[method].append((255 * float(chroma(out)[mask].mean()), 255 * out[mask].mean(0)))
    print(f"{len(reference_chroma)} of {len(names)} over-exposed frames have clipped whites")
    print(f"reference chroma there: {np.mean(reference_chroma):.1f} levels")
    for method, rows in stats.items():
        values = np.array([c for c, _ in rows])
        rgb = np.mean([m for _, m in rows], axis=0)
        print(
            f"{method}: chroma {values.mean():.1f} levels (max {values.max():.1f}), "
            f"mean RGB {rgb.round(0).astype(int).tolist()}, "
            f"frames with a cast (> {CAST:.0f}): {np.mean(values > CAST):.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
