"""Strength: blending the photo and its correction in Oklab."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exposure_slot import OptionError
from exposure_slot.options import MAX_STRENGTH, check_strength
from exposure_slot.strength import blend, oklab_to_srgb, srgb_to_oklab


def as_batch(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]


def test_oklab_round_trip_and_known_values():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((1, 3, 40, 50), np.float32))
    assert (oklab_to_srgb(srgb_to_oklab(x)) - x).abs().max() < 2e-5
    white = srgb_to_oklab(torch.ones(1, 3, 1, 1)).flatten()
    assert white[0] == pytest.approx(1.0, abs=1e-4) and white[1:].abs().max() < 1e-4
    grey = srgb_to_oklab(torch.full((1, 3, 1, 1), 0.5)).flatten()
    assert grey[1:].abs().max() < 1e-4  # neutral stays neutral


def test_zero_and_one_return_the_ends_and_between_is_between(coffee):
    photo = as_batch(coffee / 255.0) ** 2.2  # a dark version and the photo as "correction"
    corrected = as_batch(coffee / 255.0)
    assert torch.equal(blend(photo, corrected, 0), photo)
    assert torch.equal(blend(photo, corrected, 1), corrected)
    means = [blend(photo, corrected, s).mean().item() for s in (0, 0.25, 0.5, 0.75, 1, 1.5, 2)]
    assert means == sorted(means)  # steadily brighter with strength
    assert 0.2 < (means[2] - means[0]) / (means[4] - means[0]) < 0.8
    stronger = blend(photo, corrected, MAX_STRENGTH)
    assert stronger.min() >= 0 and stronger.max() <= 1


def test_steps_are_even_in_perceived_lightness_and_keep_colour(corrector, coffee):
    photo = as_batch(coffee / 255.0) ** 2.5  # too dark
    corrected = corrector(photo)
    start, end = srgb_to_oklab(photo), srgb_to_oklab(corrected)
    for strength in (0.25, 0.5, 0.75):
        lab = srgb_to_oklab(blend(photo, corrected, strength))
        expected = start[:, 0] + strength * (end[:, 0] - start[:, 0])
        assert (lab[:, 0] - expected).abs().max() < 1e-3  # lightness: even perceptual steps
        chroma = lab[:, 1:].norm(dim=1).mean()
        ends = start[:, 1:].norm(dim=1).mean() * (1 - strength)
        ends += end[:, 1:].norm(dim=1).mean() * strength
        assert chroma >= 0.97 * ends  # no loss of colour on the way


@pytest.mark.parametrize("bad", [-0.1, MAX_STRENGTH + 0.01, float("nan"), "1", True, None])
def test_strength_outside_its_range_is_an_option_error(bad):
    with pytest.raises(OptionError, match="strength"):
        check_strength(bad)
    assert check_strength(0) == 0.0 and check_strength(MAX_STRENGTH) == MAX_STRENGTH


def test_large_photos_blend_in_row_blocks_with_the_same_result():
    rng = np.random.default_rng(1)
    photo = torch.from_numpy(rng.random((1, 3, 700, 30), np.float32))
    corrected = photo.sqrt()
    whole = oklab_to_srgb(
        srgb_to_oklab(photo) + 0.5 * (srgb_to_oklab(corrected) - srgb_to_oklab(photo))
    )
    assert torch.allclose(blend(photo, corrected, 0.5), whole, atol=1e-6)


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "pil", "torch"])
def test_the_corrector_applies_strength_on_every_input_type(corrector, astronaut, mode, kind):
    from PIL import Image

    rgb = astronaut[::2, ::2] // 3  # 256×256, dark
    image = {
        "uint8": rgb,
        "uint16": rgb.astype(np.uint16) * 257,
        "float32": rgb.astype(np.float32) / 255,
        "pil": Image.fromarray(rgb),
        "torch": as_batch(rgb / 255.0)[0],
    }[kind]
    options = {"mode": mode, **({"proxy_size": 128} if mode == "fast" else {})}
    values = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    full = corrector(image, **options)
    assert np.array_equal(values(corrector(image, strength=1, **options)), values(full))
    assert np.array_equal(values(corrector(image, strength=0, **options)), values(image))
    half = values(corrector(image, strength=0.5, **options)).mean()
    assert values(image).mean() < half < values(full).mean()
    assert values(corrector(image, strength=2, **options)).mean() > values(full).mean()


def test_strength_in_a_list_and_bad_strengths_before_any_work(corrector, coffee):
    small = coffee[::4, ::4]
    listed = corrector([small, small], strength=0)
    assert all(np.array_equal(out, small) for out in listed)
    with pytest.raises(OptionError, match="strength"):
        corrector(small, strength=3)
    with pytest.raises(OptionError, match="strength"):
        corrector([small], strength="1")


def test_fast_mode_on_a_large_8_bit_photo_with_strength(corrector, astronaut):
    big = np.ascontiguousarray(np.tile(astronaut // 3, (2, 2, 1)))  # 1024×1024: the strip path
    full = corrector(big, mode="fast", proxy_size=256)
    half = corrector(big, mode="fast", proxy_size=256, strength=0.5)
    assert half.dtype == np.uint8 and big.mean() < half.mean() < full.mean()
