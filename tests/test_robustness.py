"""Bad input through the library: files, arrays, tensors, PIL modes, threads, determinism.

Each bad input gets a result or an exposure_slot error (a ValueError / TypeError / OSError)
whose message names the problem and the file or argument; nothing from deep inside torch or
Pillow reaches the caller. File-level errors of ``read_image`` that tests/test_files.py
already covers (missing, empty, not an image, truncated, decompression bomb) are not repeated.
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from exposure_slot import ExposureCorrector, ExposureSlotError
from exposure_slot.errors import ImageReadError, ImageTypeError, InvalidImageError
from exposure_slot.files import read_image, write_image
from exposure_slot.pixel_values import FLOAT_TOLERANCE

COFFEE = np.ascontiguousarray(data.coffee()[120:216, 200:328])  # 96×128×3
ASTRONAUT = np.ascontiguousarray(data.astronaut()[30:78, 200:264])  # 48×64×3
CAMERA = np.ascontiguousarray(data.camera()[100:148, 220:284])  # 48×64 gray
LEAKS = ("Traceback", "aten::", "site-packages", "torch/", "PIL/", "cannot handle this data")


def library_error(info: pytest.ExceptionInfo, *fragments: str) -> str:
    """The message of a raised error, checked to be ours, builtin-compatible and clean."""
    error = info.value
    assert isinstance(error, ExposureSlotError), type(error)
    assert type(error).__module__ == "exposure_slot.errors"
    assert isinstance(error, (ValueError, TypeError, OSError))
    message = str(error)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    for leak in LEAKS:
        assert leak.lower() not in message.lower(), (leak, message)
    return message


# --- files ----------------------------------------------------------------------------------


def test_none_and_missing_str_path(corrector, tmp_path) -> None:
    with pytest.raises(ImageTypeError) as info:
        read_image(None)
    library_error(info, "NoneType")
    missing = str(tmp_path / "holiday.jpg")
    with pytest.raises(ImageReadError) as info:
        read_image(missing)
    library_error(info, "no such file", missing)
    with pytest.raises(ImageTypeError) as info:
        corrector(missing)
    library_error(info, "path", "holiday.jpg", "read_image")
    with pytest.raises(ImageTypeError) as info:
        corrector(None)
    library_error(info, "None")


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_file_opened_with_pillow(corrector, tmp_path, ext) -> None:
    """Pillow opens a truncated file lazily; the corrector reports the file, not Pillow."""
    whole = tmp_path / f"whole.{ext}"
    Image.fromarray(COFFEE).save(whole)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    lazy = Image.open(cut)
    assert lazy.size == (128, 96)  # the header is intact
    with pytest.raises(ImageReadError) as info:
        corrector(lazy)
    library_error(info, str(cut), "truncated")
    assert isinstance(info.value.__cause__, OSError)


def test_pillow_image_whose_file_was_closed(corrector, tmp_path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(COFFEE).save(path)
    with Image.open(path) as closed:
        pass
    with pytest.raises(ImageReadError) as info:
        corrector(closed)
    library_error(info, str(path), "closed", "load()")
    with Image.open(path) as opened:
        opened.load()
    assert corrector(opened).size == (128, 96)


def tiff_with_compression(path: Path, compression: int) -> None:
    """An RGB TIFF of a real photo whose Compression tag claims ``compression``."""
    Image.fromarray(COFFEE).save(path)  # uncompressed, little-endian
    raw = bytearray(path.read_bytes())
    (first_ifd,) = struct.unpack_from("<I", raw, 4)
    (count,) = struct.unpack_from("<H", raw, first_ifd)
    for entry in range(first_ifd + 2, first_ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", raw, entry)[0] == 259:
            struct.pack_into("<H", raw, entry + 8, compression)
    path.write_bytes(bytes(raw))


def test_tiff_with_undecodable_compression(corrector, tmp_path) -> None:
    """Old-style JPEG-in-TIFF (6) without its tables: Pillow reads the header, not the pixels."""
    path = tmp_path / "scan.tif"
    tiff_with_compression(path, 6)
    assert Image.open(path).size == (128, 96)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    library_error(info, str(path), "cannot decode")
    with pytest.raises(ImageReadError) as info:
        corrector(Image.open(path))
    library_error(info, str(path))


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (1, 5000), (5000, 1)])
def test_tiny_and_thin_files(corrector, tmp_path, size) -> None:
    h, w = size
    photo = Image.fromarray(data.astronaut()).resize((w, h), Image.Resampling.BOX)
    source = tmp_path / "in.png"
    photo.save(source)
    image = read_image(source)
    out = corrector(image.rgb)
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    write_image(tmp_path / "out.png", out, like=image)
    assert read_image(tmp_path / "out.png").rgb.shape == (h, w, 3)
    fixed = corrector(Image.open(source))
    assert fixed.size == (w, h) and fixed.mode == "RGB"
    assert np.abs(np.asarray(fixed) / 255.0 - out).max() <= 0.5 / 255 + 1e-6


def gray_alpha(gray: np.ndarray) -> np.ndarray:
    ramp = np.linspace(0, 255, gray.shape[1], dtype=np.float32).astype(np.uint8)
    return np.dstack([gray, np.broadcast_to(ramp, gray.shape)])


FILE_MODES = {
    # name: (the picture, file type, the mode Pillow opens it in, the mode we give back)
    "gray": (lambda: Image.fromarray(CAMERA), "png", "L", "L"),
    "gray+alpha": (lambda: Image.fromarray(gray_alpha(CAMERA)), "png", "LA", "LA"),
    "palette": (lambda: Image.fromarray(ASTRONAUT).quantize(64), "png", "P", "RGB"),
    "palette gif": (lambda: Image.fromarray(ASTRONAUT).quantize(64), "gif", "P", "RGB"),
    "cmyk": (lambda: Image.fromarray(ASTRONAUT).convert("CMYK"), "jpg", "CMYK", "RGB"),
    "16-bit gray": (lambda: Image.fromarray(CAMERA.astype(np.uint16) * 256 + 77), "png", "I;16",
                    "I;16"),
    "bilevel": (lambda: Image.fromarray(CAMERA > 100), "png", "1", "L"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(FILE_MODES))
def test_file_modes_through_pillow_and_read_image(corrector, tmp_path, kind) -> None:
    """A file opened with Pillow and the same file read by read_image give the same
    correction, and the mode the corrector returns is the mode write_image writes."""
    make, ext, opened_mode, out_mode = FILE_MODES[kind]
    path = tmp_path / f"in.{ext}"
    make().save(path)
    opened = Image.open(path)
    assert opened.mode == opened_mode
    fixed = corrector(opened)
    assert fixed.mode == out_mode and fixed.size == (64, 48)
    image = read_image(path)
    reference = corrector(image.rgb)
    got = np.asarray(fixed, dtype=np.float64) / (65535.0 if out_mode == "I;16" else 255.0)
    if out_mode == "LA":
        assert np.array_equal(np.asarray(fixed)[..., 1], image.alpha)
        got = got[..., 0]
    expected = reference if got.ndim == 3 else reference @ np.array([0.299, 0.587, 0.114])
    assert np.abs(got - expected).max() <= 1 / 255
    write_image(tmp_path / "out.png", reference, like=image)
    assert Image.open(tmp_path / "out.png").mode == out_mode


# --- arrays and tensors -----------------------------------------------------------------------

BAD_INPUTS = {
    "NaN": (lambda: np.where(COFFEE > 250, np.nan, COFFEE / 255.0), InvalidImageError, "NaN"),
    "Inf": (lambda: np.full((8, 8, 3), np.inf, np.float32), InvalidImageError, "infinite"),
    "2 channels": (lambda: COFFEE[:, :, :2], InvalidImageError, "(96, 128, 2)"),
    "5 channels": (lambda: np.dstack([COFFEE, COFFEE[:, :, :2]]), InvalidImageError, "5)"),
    "channels first": (lambda: COFFEE.transpose(2, 0, 1), InvalidImageError, "transpose"),
    "zero height": (lambda: COFFEE[:0], InvalidImageError, "empty"),
    "zero width": (lambda: np.zeros((5, 0), np.uint8), InvalidImageError, "empty"),
    "bool": (lambda: COFFEE > 128, ImageTypeError, "dtype bool"),
    "int64": (lambda: COFFEE.astype(np.int64), ImageTypeError, "dtype int64"),
    "0-255 floats": (lambda: COFFEE.astype(np.float32), InvalidImageError, "[0, 1]"),
    "normalised": (
        lambda: (COFFEE / 255.0 - 0.45) / 0.225,
        InvalidImageError,
        "values from -2",
    ),
    "torch uint8": (lambda: torch.from_numpy(COFFEE).permute(2, 0, 1), ImageTypeError, "uint8"),
    "torch H×W×3": (lambda: torch.from_numpy(COFFEE / 255.0), InvalidImageError, "permute"),
    "torch 1 channel": (lambda: torch.rand(1, 8, 8), InvalidImageError, "(1, 8, 8)"),
    "torch 0×H×W batch": (lambda: torch.rand(0, 3, 8, 8), InvalidImageError, "empty"),
    "torch NaN": (lambda: torch.full((3, 8, 8), float("nan")), InvalidImageError, "NaN"),
    "torch meta": (lambda: torch.rand(3, 8, 8, device="meta"), ImageTypeError, "meta"),
    "torch sparse": (lambda: torch.rand(3, 8, 8).to_sparse(), ImageTypeError, "sparse"),
    "PIL mode F 0-255": (
        lambda: Image.fromarray(CAMERA).convert("F"),
        InvalidImageError,
        "mode F",
    ),
    "bytes": (lambda: b"\x89PNG\r\n\x1a\n", ImageTypeError, "bytes"),
    "int": (lambda: 7, ImageTypeError, "int"),
    "list with None": (lambda: [COFFEE, None], ImageTypeError, "item 1"),
    "list with bad array": (lambda: [COFFEE, COFFEE[:0]], InvalidImageError, "item 1"),
    "nested list": (lambda: [[COFFEE]], ImageTypeError, "item 0"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_gives_a_clear_library_error(corrector, kind) -> None:
    make, error, fragment = BAD_INPUTS[kind]
    with pytest.raises(error) as info:
        corrector(make())
    library_error(info, fragment)


def test_slot_maps_share_the_input_checks(corrector) -> None:
    with pytest.raises(InvalidImageError) as info:
        corrector.slot_maps(COFFEE.astype(np.float64))
    library_error(info, "[0, 1]")


def test_floats_slightly_outside_range_are_clipped(corrector) -> None:
    """Overshoot up to FLOAT_TOLERANCE (resampling ringing) is clipped; beyond it, refused."""
    base = COFFEE / 255.0
    ringing = base + np.where(np.indices(base.shape)[1] % 7 == 0, 0.2, -0.2)
    assert ringing.min() < 0 and ringing.max() > 1
    assert np.array_equal(corrector(ringing), corrector(np.clip(ringing, 0, 1)))
    tensor = torch.from_numpy(ringing).permute(2, 0, 1).float()
    assert torch.equal(corrector(tensor), corrector(tensor.clamp(0, 1)))
    edge = np.full((8, 8, 3), 1 + FLOAT_TOLERANCE, np.float32)
    assert corrector(edge).shape == (8, 8, 3)
    with pytest.raises(InvalidImageError) as info:
        corrector(edge + 0.01)
    library_error(info, "1.26", "[0, 1]")
    with pytest.raises(InvalidImageError):
        corrector(tensor - 0.5)


def test_non_contiguous_views_and_read_only_arrays(corrector) -> None:
    reference = corrector(np.ascontiguousarray(COFFEE[::-1, ::-2]))
    flipped = COFFEE[::-1, ::-2]  # negative and doubled strides
    assert np.array_equal(corrector(flipped), reference)
    fortran = np.asfortranarray(COFFEE[::-1, ::-2])
    assert np.array_equal(corrector(fortran), reference)
    frozen = np.ascontiguousarray(COFFEE[::-1, ::-2])
    frozen.setflags(write=False)
    assert np.array_equal(corrector(frozen), reference)
    flat = np.broadcast_to(COFFEE[40, 60], (16, 24, 3))  # read-only, zero strides
    assert np.array_equal(corrector(flat), corrector(np.ascontiguousarray(flat)))
    strided = torch.from_numpy(COFFEE / 255.0).permute(2, 0, 1)[:, ::2, 1::3].float()
    assert not strided.is_contiguous()
    assert torch.equal(corrector(strided), corrector(strided.contiguous()))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_array_layouts_and_dtypes_come_back_alike(corrector) -> None:
    rgba = np.dstack([COFFEE, np.arange(96 * 128, dtype=np.uint8).reshape(96, 128)])
    out = corrector(rgba)
    assert out.shape == (96, 128, 4) and np.array_equal(out[..., 3], rgba[..., 3])
    assert corrector(CAMERA).shape == (48, 64)
    assert corrector(CAMERA[:, :, None]).shape == (48, 64, 1)
    half = corrector((COFFEE / 255.0).astype(np.float16))
    assert half.dtype == np.float16
    assert np.abs(half - corrector((COFFEE / 255.0).astype(np.float32))).max() < 2e-3
    matrix = np.asmatrix(CAMERA / 255.0)
    assert np.array_equal(corrector(matrix), corrector(np.asarray(CAMERA / 255.0)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_tensor_dtypes_are_kept(corrector, dtype) -> None:
    x = torch.from_numpy(COFFEE / 255.0).permute(2, 0, 1).to(dtype)
    out = corrector(x)
    assert out.dtype == dtype and out.shape == x.shape
    reference = corrector(x.float())
    assert (out.float() - reference).abs().max() <= 2**-7  # bf16 rounding of [0, 1]


def test_tensor_output_can_join_autograd(corrector) -> None:
    """The result is a normal tensor (not an inference tensor): it can feed a loss."""
    x = torch.from_numpy(COFFEE / 255.0).permute(2, 0, 1).float().requires_grad_()
    out = corrector(x)
    assert not out.requires_grad and not out.is_inference()
    weight = torch.ones((), requires_grad=True)
    (out * weight).mean().backward()
    assert weight.grad is not None and float(weight.grad) == pytest.approx(float(out.mean()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensor_on_another_device_comes_back_there(corrector) -> None:
    x = torch.from_numpy(COFFEE / 255.0).permute(2, 0, 1).float()
    out = corrector(x.cuda())
    assert out.device.type == "cuda"
    assert torch.equal(out.cpu(), corrector(x))


def test_lists_and_tuples_mixing_types(corrector) -> None:
    items = [
        COFFEE,
        Image.fromarray(ASTRONAUT),
        torch.from_numpy(ASTRONAUT / 255.0).permute(2, 0, 1).float(),
        CAMERA.astype(np.uint16) * 257,
    ]
    out = corrector(items)
    assert isinstance(out, list) and len(out) == 4
    assert np.array_equal(out[0], corrector(COFFEE))
    assert isinstance(out[1], Image.Image) and out[1].size == (64, 48)
    assert torch.equal(out[2], corrector(items[2]))
    assert out[3].dtype == np.uint16 and out[3].shape == (48, 64)
    pair = corrector((COFFEE, CAMERA))
    assert isinstance(pair, tuple) and np.array_equal(pair[1], corrector(CAMERA))
    assert corrector([]) == []


def pil_in_mode(mode: str) -> Image.Image:
    """A real photo in Pillow mode ``mode``."""
    rgb = Image.fromarray(ASTRONAUT)
    gray16 = CAMERA.astype(np.uint16) * 257
    if mode == "I;16":
        return Image.fromarray(gray16)
    if mode in ("I;16B", "I;16L", "I;16N"):
        byte_order = {"I;16B": ">u2", "I;16L": "<u2", "I;16N": "=u2"}[mode]
        return Image.frombytes(mode, (64, 48), gray16.astype(byte_order).tobytes())
    if mode == "I":
        return Image.fromarray(gray16.astype(np.int32))
    if mode == "F":
        return Image.fromarray((CAMERA / 255.0).astype(np.float32))
    if mode in ("LA", "La"):
        return Image.fromarray(gray_alpha(CAMERA)).convert(mode)
    if mode == "PA":
        return rgb.quantize(32).convert("PA")
    if mode in ("RGBA", "RGBa"):
        with_alpha = rgb.copy()
        with_alpha.putalpha(Image.fromarray(gray_alpha(CAMERA)[..., 1]))
        return with_alpha.convert(mode)
    return rgb.convert(mode)


PIL_MODES = {
    "1": "L", "L": "L", "LA": "LA", "La": "LA", "P": "RGB", "PA": "RGBA", "RGB": "RGB",
    "RGBA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB",
    "LAB": "RGB", "HSV": "RGB", "I": "I", "F": "F", "I;16": "I;16", "I;16B": "I;16",
    "I;16L": "I;16", "I;16N": "I;16",
}  # fmt: skip


def test_every_pillow_mode_is_listed() -> None:
    assert set(PIL_MODES) == set(Image.MODES)


def comparable(image: Image.Image) -> np.ndarray:
    """Pixel values of ``image`` that its corrected version can be compared with."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float64)
    image = image.convert("LA") if image.mode == "La" else image  # no La -> RGB in Pillow
    return np.asarray(image.convert("RGB"), dtype=np.float64)


@pytest.mark.parametrize("mode", sorted(PIL_MODES))
def test_every_pillow_mode_works(corrector, mode) -> None:
    image = pil_in_mode(mode)
    assert image.mode == mode
    out = corrector(image)
    assert out.mode == PIL_MODES[mode] and out.size == image.size
    scale = 1.0 if mode == "F" else (65535.0 if mode.startswith("I") else 255.0)
    assert np.abs(comparable(out) - comparable(image)).mean() / scale > 0.01  # corrected
    if PIL_MODES[mode].endswith("A"):
        expected_alpha = np.asarray(image.convert(PIL_MODES[mode]))[..., -1]
        assert np.array_equal(np.asarray(out)[..., -1], expected_alpha)


# --- threads and determinism ----------------------------------------------------------------


def test_threads_get_the_serial_results(corrector) -> None:
    crops = [data.astronaut()[y : y + 40, x : x + 56] for y in (0, 200, 400) for x in (0, 300)]
    serial = [corrector(crop) for crop in crops]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(corrector, crops * 2))
    for index, out in enumerate(threaded):
        assert np.array_equal(out, serial[index % len(crops)]), index


def test_bitwise_deterministic_on_cpu(level2_path) -> None:
    photo = data.coffee()[:72, :104]
    first = ExposureCorrector(level2_path, device="cpu")
    second = ExposureCorrector(level2_path, device="cpu")
    out = first(photo / 255.0)
    assert np.array_equal(out, first(photo / 255.0))
    assert np.array_equal(out, second(photo / 255.0))
    x = torch.from_numpy(photo / 255.0).permute(2, 0, 1).float()
    assert torch.equal(first(x), second(x))
