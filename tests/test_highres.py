"""High-resolution execution: exact tiles equal the whole-image pass; fast and auto modes."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from exposure_slot import ExposureCorrector, OptionError, highres, pixels
from exposure_slot.corrector import native_bfloat16
from exposure_slot.descriptor import DESCRIPTOR
from exposure_slot.errors import ImageTypeError, InvalidImageError
from exposure_slot.evaluation import psnr
from exposure_slot.highres import EXACT_PIXEL_BUDGET, exact, fast, plan
from exposure_slot.network import ExposureSlotNet, NetConfig
from exposure_slot.options import Options


@pytest.mark.parametrize("shape", [(301, 413), (128, 200), (97, 260)])
def test_exact_tiles_equal_whole_image(corrector, astronaut, shape) -> None:
    h, w = shape
    img = astronaut[:h, :w] / 255.0
    whole = corrector(img, mode="exact", tile_size=4096)
    tiled = corrector(img, mode="exact", tile_size=64)
    assert np.abs(whole - tiled).max() <= 1e-3
    assert np.abs(whole - tiled).max() <= 1e-5  # sums in float64


def test_exact_tiles_level3_and_small_chunks(level3_path, coffee, monkeypatch) -> None:
    """Many token chunks in lockstep (each sum over pixels spans all of them)."""
    monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 300)
    corrector3 = ExposureCorrector(level3_path, device="cpu")
    img = coffee[:200, :260] / 255.0
    whole = corrector3(img, mode="exact", tile_size=4096)
    tiled = corrector3(img, mode="exact", tile_size=96)
    assert np.abs(whole - tiled).max() <= 1e-5


def test_recomputed_attention_state_gives_the_same_result(level3_path, coffee, monkeypatch):
    """Chunks that keep no attention state are replayed at every sum: same arithmetic, so the
    same image and slot maps as chunks that keep theirs (both levels)."""
    monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 300)
    img = torch.from_numpy(coffee[:200, :260] / 255.0).float().permute(2, 0, 1)[None]
    for net in (ExposureCorrector(device="cpu").net, ExposureCorrector(level3_path).net):
        with torch.inference_mode():
            kept = exact.exact_forward(net, img, tile_size=96)
            replayed = exact.exact_forward(net, img, tile_size=96, live_tokens=400)
        assert torch.equal(kept.image, replayed.image)
        assert all(torch.equal(a, b) for a, b in zip(kept.maps, replayed.maps, strict=True))


def test_max_memory_bounds_the_plan_and_keeps_the_result(corrector, astronaut, monkeypatch):
    """A budget too small for the attention state: part of it is recomputed, the plan says
    so, and the output is still the whole-image one."""
    monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 300)
    cpu, model = torch.device("cpu"), highres.BYTES_PER_PIXEL[4]
    budget = 2 * 2**30
    big = plan(4000, 6000, cpu, torch.float32, Options(mode="exact", max_memory=budget))
    assert big.tile_size == highres.REPLAY_TILE and big.live_tokens is not None
    tile_bytes = model.tile * (big.tile_size + 2 * DESCRIPTOR.decoder_halo) ** 2
    kept_bytes = model.state * 16 * big.live_tokens
    assert model.image * 24e6 + tile_bytes + kept_bytes <= budget
    assert "recomputed for the rest" in str(big) and "2048 MiB" in str(big)
    roomy = plan(4000, 6000, cpu, torch.float32, Options(mode="exact", max_memory=4 * budget))
    assert roomy.live_tokens is None and roomy.tile_size >= highres.MIN_TILE

    img = astronaut[:180, :244] / 255.0
    pixels = 180 * 244  # a budget for tokens, a 64-px tile and half of the attention state
    small = int(model.image * pixels + model.tile * 96**2 + model.state * pixels / 2)
    how = corrector.plan(img, mode="exact", tile_size=64, max_memory=small)
    assert how.live_tokens is not None and 0 < 16 * how.live_tokens < 180 * 244
    whole = corrector(img, mode="exact", tile_size=4096)
    assert (
        np.abs(corrector(img, mode="exact", tile_size=64, max_memory=small) - whole).max() <= 1e-5
    )


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
        assert np.abs(a - b).max() <= 1e-4  # float32 sums in another order


def test_fast_mode_is_close_to_exact_on_a_photo(corrector, astronaut) -> None:
    img = astronaut / 255.0
    exact_out = corrector(img, mode="exact")
    fast_out = corrector(img, mode="fast", proxy_size=256)
    assert fast_out.shape == img.shape and fast_out.dtype == img.dtype
    assert psnr(fast_out, exact_out) >= 30  # at this 2x proxy ratio


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
    "kwargs",
    [
        {"mode": "tiled"},
        {"tile_size": 30},
        {"tile_size": 130},
        {"proxy_size": 8},
        {"max_memory": 0},
    ],
)
def test_bad_highres_options(corrector, astronaut, kwargs) -> None:
    with pytest.raises(OptionError):
        corrector(astronaut[:16, :16], **kwargs)


def test_stage_tiles_and_chunks_equal_the_whole_image_pass(corrector, coffee, monkeypatch) -> None:
    """Inside a tile, every local stage runs on small stage tiles with its own halo; with
    tiny stage tiles every halo is exercised, and the result is still the whole-image one."""
    img = torch.from_numpy(coffee[:196, :292] / 255.0).float().permute(2, 0, 1)[None]
    with torch.inference_mode():
        whole = corrector.net(img)
        monkeypatch.setattr(exact, "STAGE_TILE", 24)
        monkeypatch.setattr(exact, "TOKENS_PER_CHUNK", 200)
        staged = exact.exact_forward(corrector.net, img, tile_size=4096)
        tiled = exact.exact_forward(corrector.net, img, tile_size=96)
    for out in (staged, tiled):
        assert (out.image - whole.image).abs().max() <= 1e-5
        for a, b in zip(out.maps, whole.maps, strict=True):
            assert (a - b).abs().max() <= 1e-4  # sums over many chunks, in another order


def test_exact_progress_bar(corrector, astronaut, capsys) -> None:
    img = astronaut[:160, :200]
    corrector(img, mode="exact", tile_size=64, progress=True)
    bar = capsys.readouterr().err
    assert "exact" in bar and "25/25" in bar  # 3×4 encoder tiles, attention, 3×4 decoder tiles
    corrector(img, mode="exact", tile_size=64)
    assert capsys.readouterr().err == ""


def test_tile_size_follows_available_memory(monkeypatch) -> None:
    cpu = torch.device("cpu")
    gib = 2**30
    monkeypatch.setattr(highres, "available_memory", lambda device: 64 * gib)
    roomy = plan(3000, 4000, cpu, torch.float32, Options(mode="exact"))
    assert roomy.tiles == 1 and roomy.tile_size == 4000
    assert "one tile" in str(roomy) and "25% of free cpu memory" in str(roomy)
    monkeypatch.setattr(highres, "available_memory", lambda device: 16 * gib)
    tight = plan(3000, 4000, cpu, torch.float32, Options(mode="exact"))
    half = plan(3000, 4000, cpu, torch.bfloat16, Options(mode="exact"))
    assert tight.tiles > 1 and tight.tile_size % 64 == 0 and half.tile_size > tight.tile_size
    model = highres.BYTES_PER_PIXEL[4]
    planned = model.image * 12e6 + model.tile * (tight.tile_size + 2 * DESCRIPTOR.decoder_halo) ** 2
    assert planned <= highres.MEMORY_FRACTION * 16 * gib
    assert f"{tight.tiles} tiles" in str(tight)
    monkeypatch.setattr(highres, "available_memory", lambda device: gib // 4)
    assert plan(3000, 4000, cpu, torch.float32, Options(mode="exact")).tile_size == highres.MIN_TILE
    assert (
        plan(3000, 4000, cpu, torch.float32, Options(mode="exact", tile_size=512)).tile_size == 512
    )


def test_plan_is_logged(corrector, astronaut, caplog) -> None:
    caplog.set_level("INFO", logger="exposure_slot")
    corrector(astronaut[:64, :96], mode="exact", tile_size=64)
    assert "exact (tile 64, float32) for 96×64: requested; 2 tiles" in caplog.text


def test_fast_mode_carries_a_global_colour_transform_over(astronaut) -> None:
    """A correction the local affine model can express is reproduced at full resolution."""
    img = torch.from_numpy(astronaut / 255.0).float().permute(2, 0, 1)
    mix = torch.tensor([[0.9, 0.1, 0.0], [0.05, 0.8, 0.1], [0.0, 0.1, 0.7]])

    def grade(x: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("ij,jhw->ihw", mix, x.sqrt()) + 0.1).clamp(0, 1).square()

    small = fast.downscale(img, (128, 128))
    out = fast.transfer(img, small, grade(small))
    assert psnr(out.permute(1, 2, 0).numpy(), grade(img).permute(1, 2, 0).numpy()) >= 42


@pytest.mark.parametrize("strip_rows", [1, 7, None, 1000])
def test_apply_affine_in_strips_equals_bilinear_coefficients(astronaut, strip_rows) -> None:
    """Strips interpolate the coefficients exactly as one bilinear upsampling would."""
    img = torch.from_numpy(astronaut[:301, :250] / 255.0).float().permute(2, 0, 1)[None]
    coeffs = torch.rand(1, 12, 37, 29, generator=torch.Generator().manual_seed(0)) * 0.5
    up = F.interpolate(coeffs, size=img.shape[-2:], mode="bilinear")
    root = img.sqrt()
    ref = torch.stack(
        [(up[:, 3 * c : 3 * c + 3] * root).sum(1) + up[:, 9 + c] for c in range(3)], 1
    )
    out = fast.apply_affine(img, coeffs, strip_rows=strip_rows)
    assert (out - ref.clamp(0, 1).square()).abs().max() <= 1e-5


@pytest.mark.parametrize("size", [(121, 161), (3, 7), (5, 300)])
def test_fast_mode_on_images_smaller_than_the_proxy(corrector, astronaut, size) -> None:
    """Sides that are not multiples of 4: the proxy is the image itself, padded."""
    img = astronaut[: size[0], : size[1]]
    fast_out = corrector(img, mode="fast")
    assert fast_out.shape == img.shape and fast_out.dtype == img.dtype
    assert np.abs(fast_out.astype(int) - corrector(img, mode="exact").astype(int)).max() <= 1
    assert corrector.slot_maps(img, mode="fast").levels[0].shape == (3, *size)


def test_fast_mode_on_8bit_photos_works_in_strips(corrector, astronaut) -> None:
    """uint8 numpy and PIL RGB photos larger than the proxy take the strip path (no
    full-size float copy): the float path's result, in the caller's type,
    the input untouched; reversed and read-only arrays work the same."""
    img = np.ascontiguousarray(astronaut[:500, :470])
    view, _ = pixels.uint8_rgb(img)
    assert view.data_ptr() == img.ctypes.data  # the photo's own pixels, not a copy
    before = img.copy()
    out8 = corrector(img, mode="fast", proxy_size=256)
    assert out8.dtype == np.uint8 and out8.shape == img.shape and np.array_equal(img, before)
    float_out = np.round(corrector(img / 255.0, mode="fast", proxy_size=256) * 255)
    diff = np.abs(out8.astype(int) - float_out.astype(int))
    # The two proxies differ by float rounding (1e-7), which the network's pass turns into a
    # level or two at a few pixels.
    assert diff.max() <= 2 and (diff == 0).mean() > 0.99
    pil = corrector(Image.fromarray(img), mode="fast", proxy_size=256)
    assert pil.mode == "RGB" and np.array_equal(np.asarray(pil), out8)
    flipped = img[::-1]
    assert np.array_equal(
        corrector(flipped, mode="fast", proxy_size=256),
        corrector(np.ascontiguousarray(flipped), mode="fast", proxy_size=256),
    )
    img.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(corrector(img, mode="fast", proxy_size=256), out8)
    for other in (np.dstack([img, img[..., :1]]), img[..., 0], img.astype(np.uint16)):
        assert pixels.uint8_rgb(other) is None


def test_uint8_strip_functions_match_the_float_ones(astronaut) -> None:
    rgb = torch.from_numpy(astronaut[:301, :250].copy())
    img = rgb.permute(2, 0, 1)[None].float() / 255
    for size in [(77, 64), (301, 250), (1, 1), (300, 3)]:
        assert (fast.downscale_uint8(rgb, size) - fast.downscale(img, size)).abs().max() <= 1e-5
    small = fast.downscale(img, (77, 64))
    coeffs = fast.fit_local_affine(small, (small * 1.3).clamp(0, 1).sqrt())
    full = fast.apply_affine(img, coeffs)
    want = (full[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    assert torch.equal(fast.apply_affine_uint8(rgb, coeffs), want)
    assert torch.equal(fast.transfer_uint8(rgb, small, (small * 1.3).clamp(0, 1).sqrt()), want)
    in_place = img.clone()
    assert fast.apply_affine(in_place, coeffs, out=in_place) is in_place
    assert torch.equal(in_place, full)
    with pytest.raises(ImageTypeError):
        fast.downscale_uint8(img, (10, 10))
    with pytest.raises(InvalidImageError):
        fast.apply_affine_uint8(rgb[..., :2], coeffs)
    with pytest.raises(ImageTypeError, match="coeffs"):
        fast.apply_affine_uint8(rgb, coeffs.tolist())
    with pytest.raises(InvalidImageError, match="coeffs"):
        fast.apply_affine_uint8(rgb, coeffs[:, :9])
    with pytest.raises(InvalidImageError):
        fast.apply_affine(img, coeffs, out=img[:, :, :10])
    with pytest.raises(OptionError):
        fast.downscale_uint8(rgb, (302, 10))


def test_fast_proxy_pass_precision(level2_path, astronaut) -> None:
    """By default exact mode is float32 on CPU and the proxy pass bfloat16 where the CPU
    computes it natively; an explicit dtype is used for both."""
    default = ExposureCorrector(level2_path, device="cpu")
    fp32 = ExposureCorrector(level2_path, device="cpu", dtype="float32")
    native = native_bfloat16(torch.device("cpu"))
    assert default.dtype == fp32.proxy_dtype == torch.float32
    assert default.proxy_dtype == (torch.bfloat16 if native else torch.float32)
    big = np.zeros((4000, 6000, 3), np.uint8)
    assert str(default.proxy_dtype).removeprefix("torch.") in str(default.plan(big))
    assert "float32" in str(fp32.plan(big)) and "float32" in str(default.plan(astronaut))
    assert np.array_equal(default(astronaut, mode="exact"), fp32(astronaut, mode="exact"))
    fast_default = default(astronaut, mode="fast", proxy_size=256)
    fast_fp32 = fp32(astronaut, mode="fast", proxy_size=256)
    assert psnr(fast_default, fast_fp32) >= 40  # bfloat16: visually identical


BATCH_PEAK = """
import resource, sys
import torch
from exposure_slot import ExposureCorrector
torch.set_num_threads(1)
corrector = ExposureCorrector(sys.argv[1], device="cpu")
options = {"mode": "exact", "max_memory": 16 * 2**20}
corrector(torch.rand(3, 128, 128), **options)  # one image: the baseline peak
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(corrector.plan(torch.rand(4, 3, 128, 128), **options))
corrector(torch.rand(4, 3, 128, 128), **options)
print("extra", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_a_batch_keeps_the_memory_budget_of_one_image(level2_path, tmp_path) -> None:
    """A B×3×H×W tensor: the plan is made for one image, so the batch's images go through
    one at a time and the peak stays that of one image (plus the batch itself), not B
    times the budget. Measured as peak RSS in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", BATCH_PEAK, str(level2_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "whole image in one tile" in done.stdout
    extra = int(done.stdout.split("extra")[1])
    assert extra < 8 * 2**20, done.stdout  # all four in one pass: 4 times one image's peak


@pytest.mark.parametrize("shape", [(1, 1_000_000), (1_000_000, 1), (3, 600_000)])
def test_extreme_aspect_ratios_are_planned_on_their_padded_size(corrector, shape) -> None:
    """A 1-pixel strip runs at 8 rows: 1 MP costs what 8 MP do. ``auto`` counts the padded
    pixels (fast mode beyond the exact budget) and an exact plan sizes its tiles for them."""
    strip = np.zeros((*shape, 3), np.uint8)
    how = corrector.plan(strip)
    assert how.mode == "fast" and "MP padded" in how.reason
    part = strip[:, :200_000] if shape[0] < shape[1] else strip[:200_000]
    exact = corrector.plan(part, mode="exact", max_memory=512 * 2**20)
    assert exact.tiles > 1  # 200k pixels fit 512 MiB in one tile, their 1.6 M padded do not


def test_a_one_pixel_strip_is_corrected_cheaply(corrector) -> None:
    strip = np.random.default_rng(0).integers(0, 256, (1, 1_000_000, 3), dtype=np.uint8)
    out = corrector(strip)  # planned on its padded size, not on its pixels
    assert out.shape == strip.shape and out.dtype == np.uint8
    assert np.corrcoef(out.ravel()[:30000], strip.ravel()[:30000])[0, 1] > 0.8  # the strip


def test_the_descriptor_holds_the_model_facts_the_rest_reads(corrector) -> None:
    facts = corrector.net.descriptor
    assert facts is NetConfig((3, 7, 10)).descriptor is DESCRIPTOR
    assert (facts.size_multiple, facts.min_side, facts.token_stride) == (4, 8, 4)
    assert facts.padded_size(1, 13) == (8, 16) and facts.token_grid(9, 13) == (3, 4)
    assert fast.proxy_size(1001, 3007, long_side=500) == (168, 500)  # multiples of 4
    assert set(facts.precisions) == {"float32", "float16", "bfloat16"}
    assert all(isinstance(getattr(torch, name), torch.dtype) for name in facts.precisions)
    net = ExposureSlotNet().set_precision(torch.bfloat16)
    assert net.conv_in.weight.dtype == torch.bfloat16 and net.islands_intact()
    assert net.block.attn.slots.slots_mu.dtype == net.block.attn.rescale.dtype == torch.float32
    assert not net.to(torch.bfloat16).islands_intact()  # a host's cast reaches the islands
    assert max(facts.encoder_halo, facts.decoder_halo) % facts.size_multiple == 0


def test_exact_mode_with_a_proxy_size_is_an_option_error(corrector, astronaut) -> None:
    """A proxy size has no effect in exact mode: refused, not silently ignored."""
    small = astronaut[:32, :32]
    for call in (corrector, corrector.plan, corrector.slot_maps):
        with pytest.raises(OptionError, match="proxy_size 512 has no effect in exact mode"):
            call(small, mode="exact", proxy_size=512)
    assert corrector.plan(small, mode="fast", proxy_size=512).proxy_size == 512


@pytest.mark.parametrize("bad", [66, 0, -4, 4.0, True, "64"])
def test_tile_size_errors_are_option_errors_everywhere(corrector, bad) -> None:
    """The options' check and exact_forward's own both raise OptionError (a ValueError)."""
    with pytest.raises(OptionError, match="tile_size"):
        Options(tile_size=bad)
    with pytest.raises(OptionError, match="tile_size must be a positive multiple of 4"):
        exact.exact_forward(corrector.net, torch.rand(1, 3, 16, 16), tile_size=bad)


def test_options_are_checked_once_per_call_and_frozen(corrector, astronaut) -> None:
    options = Options("fast", None, 64, 2e9, 1, False)
    assert (options.max_memory, options.strength) == (2_000_000_000, 1.0)
    with pytest.raises(AttributeError):
        options.mode = "exact"  # type: ignore[misc]
    with pytest.raises(OptionError, match="progress must be True or False"):
        corrector(astronaut[:16, :16], progress="yes")
    with pytest.raises(OptionError, match="mode must be one of"):
        corrector([], mode="best")  # refused before any image, even with none
