"""High-resolution execution: exact tiles equal the whole-image pass; fast and auto modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exposure_slot import ExposureCorrector, OptionError
from exposure_slot.evaluation import psnr
from exposure_slot.highres import EXACT_PIXEL_BUDGET, exact, plan


@pytest.mark.parametrize("shape", [(301, 413), (128, 200), (97, 260)])
def test_exact_tiles_equal_whole_image(corrector, astronaut, shape) -> None:
    h, w = shape
    img = astronaut[:h, :w] / 255.0
    whole = corrector(img, mode="exact", tile_size=4096)
    tiled = corrector(img, mode="exact", tile_size=64)
    assert np.abs(whole - tiled).max() <= 1e-3
    assert np.abs(whole - tiled).max() <= 1e-5  # measured 6e-8: sums in float64


def test_exact_tiles_level3_and_small_chunks(level3_path, coffee, monkeypatch) -> None:
    """Many token chunks in lockstep (each sum over pixels spans all of them)."""
    monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 300)
    corrector3 = ExposureCorrector(level3_path, device="cpu")
    img = coffee[:200, :260] / 255.0
    whole = corrector3(img, mode="exact", tile_size=4096)
    tiled = corrector3(img, mode="exact", tile_size=96)
    assert np.abs(whole - tiled).max() <= 1e-5


def test_exact_tiled_slot_maps(corrector, astronaut, monkeypatch) -> None:
    """Slot maps of a tiled pass (maps gathered from the lockstep chunks)."""
    img = astronaut[:180, :244]
    whole = corrector.slot_maps(img, mode="exact")
    monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 500)
    batch = torch.from_numpy(img / 255.0).float().permute(2, 0, 1)[None]
    with torch.inference_mode():
        out = exact.exact_forward(corrector.net, batch, tile_size=64)
    tiled = [m[0].reshape(m.shape[1], 45, 61).numpy() for m in out.maps]
    for a, b in zip(whole.native, tiled, strict=True):
        assert np.abs(a - b).max() < 1e-5


def test_fast_mode_is_close_to_exact_on_a_photo(corrector, astronaut) -> None:
    img = astronaut / 255.0
    exact_out = corrector(img, mode="exact")
    fast_out = corrector(img, mode="fast", proxy_size=256)
    assert fast_out.shape == img.shape and fast_out.dtype == img.dtype
    assert psnr(fast_out, exact_out) >= 30  # measured ~40 dB at this 2x proxy ratio


def test_fast_mode_slot_maps_come_from_the_proxy(corrector, astronaut) -> None:
    maps = corrector.slot_maps(astronaut, mode="fast", proxy_size=128)
    assert maps.native[0].shape == (3, 32, 32)
    assert maps.levels[0].shape == (3, 512, 512)
    assert np.allclose(maps.levels[1].sum(0), 1, atol=1e-4)


def test_auto_rule_is_visible(corrector) -> None:
    budget = EXACT_PIXEL_BUDGET["cpu"]
    small = corrector.plan(np.zeros((1000, 1000, 3), np.uint8))
    assert small.mode == "exact" and small.tile_size >= 256
    big = corrector.plan(np.zeros((4000, 6000, 3), np.uint8))
    assert big.mode == "fast" and big.proxy_size == 1024
    assert "exact budget" in str(big) and budget < 4000 * 6000
    assert corrector.plan(np.zeros((4000, 6000, 3), np.uint8), mode="exact").mode == "exact"


@pytest.mark.parametrize(
    "kwargs", [{"mode": "tiled"}, {"tile_size": 30}, {"tile_size": 130}, {"proxy_size": 8}]
)
def test_bad_highres_options(corrector, astronaut, kwargs) -> None:
    with pytest.raises(OptionError):
        corrector(astronaut[:16, :16], **kwargs)


def test_plan_tile_size_follows_memory() -> None:
    cpu = torch.device("cpu")
    fp32 = plan(5000, 5000, cpu, torch.float32, mode="exact").tile_size
    bf16 = plan(5000, 5000, cpu, torch.bfloat16, mode="exact").tile_size
    assert fp32 % 64 == 0 and bf16 >= fp32
