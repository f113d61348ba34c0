"""ExposureCorrector: every input type, odd sizes, batches, slot maps, weights round trips."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from exposure_slot import (
    ExposureCorrector,
    ExposureSlotNet,
    ImageTypeError,
    InvalidImageError,
    OptionError,
    UnsupportedPrecisionError,
    WeightsError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from exposure_slot.weights import sha256_file
from exposure_slot.weights.convert import read_state_dict


def _reference(corrector: ExposureCorrector, rgb_float: np.ndarray) -> np.ndarray:
    """The float32 numpy path, which the parity tests pin to the authors' code."""
    return corrector(rgb_float.astype(np.float32))


def test_numpy_dtypes_keep_dtype_and_range(corrector, astronaut) -> None:
    img8 = astronaut[:96, :80]
    ref = _reference(corrector, img8 / 255.0)
    out8 = corrector(img8)
    assert out8.dtype == np.uint8 and out8.shape == img8.shape
    assert np.abs(out8 / 255.0 - ref).max() <= 0.5 / 255 + 1e-6
    img16 = img8.astype(np.uint16) * 257
    out16 = corrector(img16)
    assert out16.dtype == np.uint16
    # Row-major like the input, so OpenCV and Pillow take the result without a copy.
    assert out8.flags["C_CONTIGUOUS"] and out16.flags["C_CONTIGUOUS"]
    assert np.abs(out16 / 65535.0 - ref).max() <= 0.5 / 65535 + 1e-6
    out64 = corrector(img8 / 255.0)
    assert out64.dtype == np.float64
    assert np.abs(out64 - ref).max() < 1e-6


def test_output_differs_from_input_and_is_clipped(corrector, coffee) -> None:
    out = corrector(coffee[:64, :64] / 255.0)
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out - coffee[:64, :64] / 255.0).mean() > 1e-3


def test_pil_modes(corrector, astronaut) -> None:
    rgb = Image.fromarray(astronaut[:64, :48])
    assert corrector(rgb).mode == "RGB"
    assert corrector(rgb).size == rgb.size
    gray = rgb.convert("L")
    assert corrector(gray).mode == "L"
    rgba = rgb.copy()
    alpha = Image.fromarray((np.arange(64 * 48) % 256).astype(np.uint8).reshape(64, 48))
    rgba.putalpha(alpha)
    out = corrector(rgba)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[:, :, 3], np.asarray(alpha))
    assert corrector(rgb.convert("P")).mode == "RGB"
    assert corrector(rgb.convert("CMYK")).mode == "RGB"
    gray16 = Image.fromarray(astronaut[:64, :48, 0].astype(np.uint16) * 257)
    assert corrector(gray16).mode.startswith("I;16")


def test_torch_single_and_batch_on_input_device(corrector, astronaut) -> None:
    x = torch.from_numpy(astronaut[:40, :36] / 255.0).permute(2, 0, 1).float()
    single = corrector(x)
    assert single.shape == x.shape and single.dtype == torch.float32
    batch = corrector(torch.stack([x, x.flip(-1)]))
    assert batch.shape == (2, *x.shape)
    assert torch.allclose(batch[0], single, atol=1e-6)
    ref = _reference(corrector, astronaut[:40, :36][:, ::-1] / 255.0)
    assert np.abs(batch[1].permute(1, 2, 0).numpy() - ref).max() < 1e-5
    assert corrector(x.double()).dtype == torch.float64


def test_batch_items_are_independent(corrector, astronaut, coffee) -> None:
    """Slot sums run per image: a batch gives each image its own result."""
    a = torch.from_numpy(astronaut[:64, :64] / 255.0).permute(2, 0, 1).float()
    b = torch.from_numpy(coffee[:64, :64] / 255.0).permute(2, 0, 1).float()
    together = corrector(torch.stack([a, b]))
    assert torch.allclose(together[1], corrector(b), atol=1e-6)


def test_list_in_list_out(corrector, astronaut) -> None:
    items = [astronaut[:20, :30], Image.fromarray(astronaut[:9, :5])]
    out = corrector(items)
    assert isinstance(out, list) and out[0].shape == (20, 30, 3) and out[1].size == (5, 9)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (1, 50), (5, 3), (9, 13), (30, 2)])
def test_odd_sizes(corrector, astronaut, shape) -> None:
    h, w = shape
    out = corrector(astronaut[:h, :w])
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


def test_odd_size_matches_authors_padding(corrector, astronaut) -> None:
    """A 90×122 crop is padded right/bottom by reflection, run, cropped back."""
    img = astronaut[:90, :122] / 255.0
    padded = np.pad(img, ((0, 2), (0, 2), (0, 0)), mode="reflect")
    assert np.abs(corrector(img) - corrector(padded)[:90, :122]).max() < 1e-6


def test_slot_maps(corrector, astronaut) -> None:
    maps = corrector.slot_maps(astronaut[:50, :70])
    assert [m.shape for m in maps.native] == [(3, 13, 18), (7, 13, 18)]
    assert [m.shape for m in maps.levels] == [(3, 50, 70), (7, 50, 70)]
    for m in maps.native + maps.levels:
        assert m.dtype == np.float32
        assert np.allclose(m.sum(axis=0), 1, atol=1e-5)
    labels = maps.labels(0)
    assert labels.shape == (50, 70) and set(np.unique(labels)) <= {0, 1, 2}
    overlay = maps.overlay(astronaut[:50, :70], level=1)
    assert overlay.size == (70, 50) and overlay.mode == "RGB"


def test_slot_maps_level3(level3_path, astronaut) -> None:
    maps = ExposureCorrector(level3_path, device="cpu").slot_maps(astronaut[:32, :32])
    assert [m.shape[0] for m in maps.levels] == [3, 7, 10]


@pytest.mark.parametrize(
    "bad, error",
    [
        (None, ImageTypeError),
        ("photo.jpg", ImageTypeError),
        (np.zeros((4, 4, 3), dtype=bool), ImageTypeError),
        (np.zeros((4, 4, 3), dtype=np.int64), ImageTypeError),
        (np.zeros((4, 4, 2), dtype=np.uint8), InvalidImageError),
        (np.zeros((4, 4, 5), dtype=np.uint8), InvalidImageError),
        (np.zeros((0, 4, 3), dtype=np.uint8), InvalidImageError),
        (np.full((4, 4, 3), np.nan, dtype=np.float32), InvalidImageError),
        (torch.zeros(4, 3, 3), InvalidImageError),
        (torch.zeros(3, 4, 4, dtype=torch.uint8), ImageTypeError),
    ],
)
def test_bad_inputs_raise_library_errors(corrector, bad, error) -> None:
    with pytest.raises(error):
        corrector(bad)


def test_save_pretrained_round_trip(corrector, tmp_path, astronaut) -> None:
    folder = corrector.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                        "model.safetensors"]  # fmt: skip
    card = (folder / "README.md").read_text()
    assert sha256_file(folder / "model.safetensors") in card and "level2_seed0.pth" in card
    state = read_state_dict(folder / "model.safetensors")
    assert not any(k.startswith("slot_decoder") for k in state)
    again = ExposureCorrector.from_pretrained(folder, device="cpu")
    assert again.level == 2
    img = astronaut[:48, :48]
    assert np.array_equal(again(img), corrector(img))
    single_file = ExposureCorrector(folder / "model.safetensors", device="cpu")
    assert np.array_equal(single_file(img), corrector(img))


def test_pickle_with_code_is_refused_without_running(tmp_path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": Evil()}, handle)
    with pytest.raises(WeightsIntegrityError, match="weights-only"):
        ExposureCorrector(path, device="cpu")
    assert not marker.exists()


def test_truncated_and_wrong_weights(tmp_path, level2_path) -> None:
    data = level2_path.read_bytes()
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsIntegrityError):
        ExposureCorrector(truncated, device="cpu")
    state = read_state_dict(level2_path)
    del state["conv1_1.weight"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"missing keys \[conv_in.weight\].*extra.weight"):
        ExposureCorrector(state, device="cpu")
    with pytest.raises(WeightsError, match="not an Exposure-slot state dict"):
        ExposureCorrector({"fc.weight": torch.zeros(2, 2)}, device="cpu")
    with pytest.raises(WeightsNotFoundError):
        ExposureCorrector(tmp_path / "missing.pth", device="cpu")


def test_authors_checkpoint_is_not_downloadable_but_explained() -> None:
    with pytest.raises(WeightsNotFoundError, match="convert"):
        ExposureCorrector("authors-sice-level2", device="cpu")


def test_precision_policy(level2_path) -> None:
    with pytest.raises(UnsupportedPrecisionError, match="bfloat16"):
        ExposureCorrector(level2_path, device="cpu", dtype=torch.float16)
    with pytest.raises(UnsupportedPrecisionError):
        ExposureCorrector(level2_path, device="cpu", dtype=torch.int8)
    assert ExposureCorrector(level2_path, device="cpu").dtype == torch.float32


def test_compile_is_an_opt_in(level2_path, corrector) -> None:
    """torch.compile only when asked (tests that compile are slow: tests/test_cli.py)."""
    assert corrector.compiled is False
    assert corrector.net.full_features.__func__ is ExposureSlotNet.full_features
    with pytest.raises(OptionError, match="compile"):
        ExposureCorrector(level2_path, device="cpu", compile="yes")


def test_bfloat16_on_cpu_is_close_to_float32(level2_path, corrector, astronaut) -> None:
    bf16 = ExposureCorrector(level2_path, device="cpu", dtype="bfloat16")
    img = astronaut[:128, :128] / 255.0
    diff = np.abs(bf16(img) - corrector(img))
    # bf16 keeps 8 bits of mantissa: the mean difference stays far below the bound.
    assert diff.mean() < 0.01
    assert bf16.net.block.attn.slots.slots_mu.dtype == torch.float32


def test_deterministic_on_cpu(corrector, astronaut) -> None:
    img = astronaut[:64, :64]
    assert np.array_equal(corrector(img), corrector(img))


def test_read_only_and_non_contiguous_arrays(corrector, astronaut) -> None:
    img = astronaut[:64:2, :64:2]
    assert not img.flags["C_CONTIGUOUS"]
    frozen = np.array(astronaut[:32, :32])
    frozen.setflags(write=False)
    assert corrector(img).shape == (32, 32, 3)
    assert np.array_equal(corrector(frozen), corrector(np.ascontiguousarray(frozen)))


# -- options: one library error naming the argument and what it may be (issue 22, item 18) -----


@pytest.mark.parametrize(
    ("device", "words"),
    [
        ("bogus", "device bogus: not a supported device, use one of cpu, cuda, mps"),
        ("meta", "device meta: not a supported device"),
        (torch.device("meta"), "device meta: not a supported device"),
        (3.5, "device must be a string or torch.device, not float"),
        pytest.param(
            "cuda",
            "device cuda: no such device is available on this machine: use cpu",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_bad_devices_are_option_errors(level2_path, device, words) -> None:
    with pytest.raises(OptionError) as info:
        ExposureCorrector(level2_path, device=device)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("tile_size", 64.0, "tile_size must be an int, a multiple of 4, at least 64"),
        ("tile_size", "512", "tile_size must be an int"),
        ("tile_size", True, "tile_size must be an int"),
        ("tile_size", 66, "a multiple of 4"),
        ("proxy_size", "1024", "proxy_size must be an int, at least 64"),
        ("proxy_size", float("nan"), "proxy_size must be an int"),
        ("max_memory", float("nan"), "max_memory must be a positive number of bytes"),
        ("max_memory", float("inf"), "max_memory must be a positive number of bytes"),
        ("max_memory", "1G", "max_memory must be a positive number of bytes"),
        ("max_memory", -1, "max_memory must be a positive number of bytes"),
        ("mode", ["exact"], "mode must be one of auto, exact, fast"),
    ],
)
def test_bad_size_options_are_option_errors(corrector, option, value, words) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    for call in (corrector, corrector.plan):
        with pytest.raises(OptionError) as info:
            call(image, **{option: value})
        assert words in str(info.value)


def test_size_options_accept_numpy_ints_and_float_bytes(corrector) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    how = corrector.plan(image, mode="exact", tile_size=np.int64(64), max_memory=2e9)
    assert how.tile_size == 64 and "1907 MiB" in how.reason


def test_weights_none_is_an_option_error() -> None:
    with pytest.raises(OptionError, match=r"weights must be a name .* not NoneType"):
        ExposureCorrector(None, device="cpu")


def test_nested_tensor_is_an_image_type_error(corrector) -> None:
    nested = torch.nested.nested_tensor([torch.rand(3, 8, 8), torch.rand(3, 8, 12)])
    with pytest.raises(ImageTypeError, match="nested tensor"):
        corrector(nested)


def test_slot_map_levels_and_overlay_size_are_checked(corrector, astronaut) -> None:
    image = astronaut[:64, :96]
    maps = corrector.slot_maps(image)
    assert maps.labels(1).shape == (64, 96) and maps.overlay(image, level=1).size == (96, 64)
    for level in (2, 5, -1, 1.0, "0"):
        with pytest.raises(OptionError, match=r"level must be .*0 to 1"):
            maps.labels(level)
    with pytest.raises(InvalidImageError, match=r"image is 64×64 but .* from a 96×64 image"):
        maps.overlay(astronaut[:64, :64])
    with pytest.raises(OptionError, match="alpha must be a number from 0 to 1"):
        maps.overlay(image, alpha=2)


@pytest.mark.parametrize("dtype", [">u2", ">f4", ">f8", ">f2"])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_swapped_byte_order_gives_the_native_result(corrector, astronaut, dtype, channels):
    """Big-endian arrays (from FITS, network data, np.frombuffer ...) are read as values."""
    rgb = astronaut[:40, :56]
    values = {None: rgb[:, :, 0], 3: rgb, 4: np.dstack([rgb, rgb[:, :, :1]])}[channels]
    native_type = np.dtype(dtype).newbyteorder("=")
    scale = 257 if native_type == np.uint16 else 1 / 255
    native = (values.astype(np.float64) * scale).astype(native_type)
    swapped = native.astype(dtype)
    out = corrector(swapped)
    assert out.dtype == np.dtype(dtype) and out.shape == swapped.shape
    assert np.array_equal(out, corrector(native))
