"""Clipped skies and whites stay neutral: over-exposed camera frames of two real HDR scenes
(held out of training) corrected by the default weights keep the colour of the regions that
are near-white in the scene's fused reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exposure_slot.synthesis import ExposureParams, fuse, luminance, well_exposed_bracket

DATA = Path(__file__).parent / "data"
SCENES = ("scene_mttamwest.npz", "scene_desk.npz")
"""OpenEXR sample images (BSD-3-Clause, ILM; see tests/data/CREDITS.md), validation scenes
of docs/hdr_scenes.csv, downsized to 256 pixels."""
CAMERA = ExposureParams("over", 0.0, shoulder_c=0.9, toe=0.01, gamma=2.2)
NEAR_WHITE_LUMA, NEAR_WHITE_CHROMA, CLIPPED = 0.85, 0.06, 0.97
CAST_LEVELS = 12.0
"""Tint (see :func:`tint_levels`) above which a white region shows a visible colour cast, as
in benchmarks/highlight_chroma.py."""
GREY_LUMA = 0.75
"""Mean luma below which a clipped white region reads as grey."""


def chroma(rgb: np.ndarray) -> np.ndarray:
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def tint_levels(out: np.ndarray, reference: np.ndarray) -> float:
    """How far the mean colour of ``out`` is in hue, brightness aside, from neutral or from
    the reference's, whichever is nearer (a clipped white has lost its hue, so neutral is a
    right answer): the spread of R, G, B of the difference once each is scaled to luma 1,
    in 8-bit levels."""
    scaled = out / luminance(out)
    return 255 * min(
        float(np.ptp(scaled - reference / luminance(reference))), float(np.ptp(scaled))
    )


def white_regions(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pixels near-white in the reference and clipped in the frame: what the network must
    fill in with no colour left in its input."""
    near_white = (luminance(reference) >= NEAR_WHITE_LUMA) & (
        chroma(reference) <= NEAR_WHITE_CHROMA
    )
    return near_white & np.all(frame >= CLIPPED, axis=-1)


@pytest.fixture(scope="module")
def default_corrector():
    from exposure_slot import ExposureCorrector

    return ExposureCorrector(device="cpu")


@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("ev", [2, 3])
def test_clipped_whites_stay_neutral(default_corrector, scene: str, ev: int) -> None:
    radiance = np.load(DATA / scene)["radiance"].astype(np.float32)
    bracket = well_exposed_bracket(radiance, CAMERA)
    reference = fuse(list(bracket.values()))
    frame = bracket[ev]
    mask = white_regions(frame, reference)
    assert mask.sum() >= 100, "the render must have clipped whites to test"
    out = np.clip(default_corrector(frame), 0, 1)[mask].mean(axis=0)
    want = reference[mask].mean(axis=0)
    shown = f"mean RGB {np.round(255 * out)} where the reference has {np.round(255 * want)}"
    assert tint_levels(out, want) <= CAST_LEVELS, f"cast: {shown}"
    assert luminance(out) >= GREY_LUMA, f"grey whites: {shown}"
