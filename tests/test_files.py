"""Image file I/O: round trips of every mode on real files, metadata, orientation, errors."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps, JpegImagePlugin
from skimage import data

from exposure_slot.errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageTypeError,
    ImageWriteError,
    InvalidImageError,
    OptionError,
)
from exposure_slot.files import (
    ImageData,
    _atomic,
    _encoders,
    from_uint,
    read_image,
    to_uint,
    write_image,
)

# Non-square crops, so a wrong rotation or a swapped axis changes the shape.
ASTRONAUT = np.ascontiguousarray(data.astronaut()[40:136, 180:308])  # 96×128×3
COFFEE = np.ascontiguousarray(data.coffee()[100:190, 200:320])  # 90×120×3
CAMERA = np.ascontiguousarray(data.camera()[60:180, 200:360])  # 120×160
RNG = np.random.default_rng(1234)
ALPHA8 = RNG.integers(0, 256, ASTRONAUT.shape[:2], dtype=np.uint8)
# 16-bit colour whose values are mostly not multiples of 257 (so 8-bit rounding would show).
COFFEE16 = (COFFEE.astype(np.uint16) * 257 + RNG.integers(0, 257, COFFEE.shape)).astype(np.uint16)
ALPHA16 = RNG.integers(0, 65536, COFFEE.shape[:2], dtype=np.uint16)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
    b' xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' tiff:Orientation="6"><dc:creator>Ann Example</dc:creator></rdf:Description>'
    b"</rdf:RDF></x:xmpmeta>"
)
# How the stored pixels must be turned so that EXIF orientation o displays them upright;
# applying the inverse to an upright picture gives the stored one.
STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def make_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[271] = "Canon"
    exif[272] = "EOS R5"
    exif[306] = "2021:02:03 04:05:06"
    exif[274] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2021:02:03 04:05:06"  # DateTimeOriginal
    return exif


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def insert_png_chunk(png: bytes, kind: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + png_chunk(kind, payload) + png[33:]


def as8(image: ImageData) -> np.ndarray:
    return to_uint(image.rgb, 8)


def as16(image: ImageData) -> np.ndarray:
    return to_uint(image.rgb, 16)


def save_cv2_16bit(path: Path, rgb16: np.ndarray, alpha16: np.ndarray | None = None) -> None:
    """Write a 16-bit file with OpenCV (an encoder independent of ours)."""
    bgr = rgb16[..., ::-1]
    if alpha16 is not None:
        bgr = np.dstack([bgr, alpha16])
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))


def read_cv2_16bit(path: Path) -> np.ndarray:
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16
    return decoded if decoded.ndim == 2 else decoded[..., [2, 1, 0, *range(3, decoded.shape[2])]]


def test_reading_and_writing_files_does_not_load_torch(tmp_path):
    """The command line's start-up imports exposure_slot.files: torch must not come with it,
    nor with a 32-bit gray file (read by the rule PIL images get) written back as gray."""
    Image.fromarray(COFFEE).save(tmp_path / "in.png")
    gray = COFFEE[..., 1].astype(np.int32) * 257
    Image.fromarray(gray, "I").save(tmp_path / "gray.tif")
    code = (
        "import sys\n"
        "from exposure_slot.files import read_image, write_image\n"
        "write_image(sys.argv[2], read_image(sys.argv[1]).rgb)\n"
        "g = read_image(sys.argv[3])\n"
        "write_image(sys.argv[4], g.rgb, like=g)\n"
        "print('torch' in sys.modules)"
    )
    paths = [tmp_path / name for name in ("in.png", "out.png", "gray.tif", "gray_out.png")]
    done = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), COFFEE)
    gray_out = Image.open(tmp_path / "gray_out.png")
    assert gray_out.mode.startswith("I")
    assert np.array_equal(np.asarray(gray_out), gray)


# --- quantisation helpers ---------------------------------------------------------------------


def test_from_uint_to_uint_are_exact_inverses_for_every_value():
    for dtype, bits in ((np.uint8, 8), (np.uint16, 16)):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        floats = from_uint(values)
        assert floats.dtype == np.float32 and floats.min() == 0.0 and floats.max() == 1.0
        assert np.array_equal(to_uint(floats, bits), values)


def test_to_uint_rounds_to_nearest_and_clips():
    x = np.array([-0.3, 0.4 / 255, 0.6 / 255, 1.5 / 255, 2.5 / 255, 254.7 / 255, 1.7])
    assert to_uint(x, 8).tolist() == [0, 0, 1, 2, 2, 255, 255]  # ties to even: 2.5 -> 2
    with pytest.raises(InvalidImageError):
        to_uint(np.array([0.2, np.nan]), 8)
    with pytest.raises(OptionError):
        to_uint(x, 12)
    with pytest.raises(ImageTypeError):
        from_uint(np.zeros(3, dtype=np.int32))


def test_to_uint_on_a_large_photo_in_any_memory_order(astronaut):
    """Quantised a block of rows at a time: the same as whole-array rounding, whatever the
    memory order, and a NaN in the last row is still found."""
    photo = np.tile(from_uint(astronaut), (3, 2, 1)) * 1.1 - 0.05  # 1536×1024, values beyond [0, 1]
    planar = np.ascontiguousarray(photo.transpose(2, 0, 1)).transpose(1, 2, 0)
    for values in (photo, planar, photo.astype(np.float64)):
        for bits in (8, 16):
            scale = np.float32(2**bits - 1)
            wanted = np.rint(np.clip(values, 0, 1) * scale).astype(f"uint{bits}")
            assert np.array_equal(to_uint(values, bits), wanted)
    photo[-1, -1, 2] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        to_uint(photo, 8)


# --- 8-bit round trips --------------------------------------------------------------------------


def test_rgb_png_identity_is_bit_exact(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(ASTRONAUT).save(src)
    image = read_image(src)
    assert image.rgb.dtype == np.float32 and image.rgb.shape == (96, 128, 3)
    assert (image.bit_depth, image.mode, image.format, image.alpha) == (8, "RGB", "PNG", None)
    assert np.array_equal(as8(image), ASTRONAUT)
    write_image(tmp_path / "out.png", image.rgb, image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), ASTRONAUT)
    assert np.array_equal(read_image(tmp_path / "out.png").rgb, image.rgb)


def test_rgb_jpeg_round_trip_is_close_and_keeps_full_chroma(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(COFFEE).save(src, quality=95)
    image = read_image(src)
    assert (image.mode, image.format, image.bit_depth) == ("RGB", "JPEG", 8)
    assert np.abs(as8(image).astype(int) - COFFEE).mean() < 3
    write_image(tmp_path / "out.jpg", image.rgb, image)
    out = Image.open(tmp_path / "out.jpg")
    assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4 at the default quality 95
    assert np.abs(np.asarray(out).astype(int) - as8(image)).mean() < 2
    write_image(tmp_path / "low.jpg", image.rgb, image, quality=60)
    assert JpegImagePlugin.get_sampling(Image.open(tmp_path / "low.jpg")) == 2  # 4:2:0


def test_grayscale_in_grayscale_out(tmp_path):
    src = tmp_path / "gray.png"
    Image.fromarray(CAMERA).save(src)
    image = read_image(src)
    assert image.mode == "L" and image.rgb.shape == (*CAMERA.shape, 3)
    assert np.array_equal(image.rgb[..., 0], image.rgb[..., 2])
    for ext in ("png", "tif", "jpg", "bmp"):
        write_image(tmp_path / f"out.{ext}", image.rgb, image)
        out = Image.open(tmp_path / f"out.{ext}")
        assert out.mode == "L", ext
        if ext != "jpg":
            assert np.array_equal(np.asarray(out), CAMERA), ext
    write_image(tmp_path / "out.webp", image.rgb, image)  # WebP has no grayscale: R = G = B
    assert read_image(tmp_path / "out.webp").rgb.std(axis=2).max() < 0.02


def test_colour_result_for_gray_input_is_written_as_rec601_luma(tmp_path):
    Image.fromarray(CAMERA).save(tmp_path / "gray.png")
    like = read_image(tmp_path / "gray.png")
    colourful = COFFEE.astype(np.float32) / 255  # a corrected result with some colour
    write_image(tmp_path / "out.png", colourful, like)
    written = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    pillow_luma = np.asarray(Image.fromarray(COFFEE).convert("L")).astype(int)
    assert written.shape == COFFEE.shape[:2]
    assert np.abs(written - pillow_luma).max() <= 1


def test_rgba_alpha_is_bit_exact(tmp_path):
    Image.fromarray(np.dstack([ASTRONAUT, ALPHA8])).save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.mode == "RGBA" and image.alpha.dtype == np.uint8
    assert np.array_equal(image.alpha, ALPHA8) and np.array_equal(as8(image), ASTRONAUT)
    for ext in ("png", "tif", "webp"):
        write_image(tmp_path / f"out.{ext}", image.rgb, image)
        out = Image.open(tmp_path / f"out.{ext}")
        assert out.mode == "RGBA", ext
        assert np.array_equal(np.asarray(out)[..., 3], ALPHA8), ext
    write_image(tmp_path / "out.jpg", image.rgb, image)  # JPEG has no alpha: dropped
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_gray_alpha_round_trip(tmp_path):
    Image.fromarray(np.dstack([CAMERA, CAMERA[::-1]])).save(tmp_path / "in.png")
    assert Image.open(tmp_path / "in.png").mode == "LA"
    image = read_image(tmp_path / "in.png")
    assert image.mode == "LA" and np.array_equal(image.alpha, CAMERA[::-1])
    write_image(tmp_path / "out.png", image.rgb, image)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "LA"
    assert np.array_equal(np.asarray(out), np.dstack([CAMERA, CAMERA[::-1]]))


def test_palette_with_transparency_becomes_rgba(tmp_path):
    palette_image = Image.fromarray(ASTRONAUT).quantize(32)
    palette_image.save(tmp_path / "in.png", transparency=5)
    indices = np.asarray(Image.open(tmp_path / "in.png"))
    expected = np.asarray(Image.open(tmp_path / "in.png").convert("RGBA"))
    image = read_image(tmp_path / "in.png")
    assert image.mode == "P"
    assert np.array_equal(image.alpha == 0, indices == 5) and (indices == 5).any()
    assert np.array_equal(as8(image), expected[..., :3])
    write_image(tmp_path / "out.png", image.rgb, image)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out), expected)


def test_palette_without_transparency_becomes_rgb(tmp_path):
    Image.fromarray(COFFEE).quantize(64).save(tmp_path / "in.gif")
    image = read_image(tmp_path / "in.gif")
    assert image.mode == "P" and image.alpha is None
    write_image(tmp_path / "out.png", image.rgb, image)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGB"
    assert np.array_equal(
        np.asarray(out), np.asarray(Image.open(tmp_path / "in.gif").convert("RGB"))
    )


def test_cmyk_jpeg_reads_as_rgb_and_drops_a_cmyk_profile(tmp_path):
    # Pillow writes CMYK JPEGs the Adobe (inverted) way; the header of a real ICC profile with
    # its colour space changed to CMYK stands in for a CMYK profile.
    cmyk_icc = SRGB_ICC[:16] + b"CMYK" + SRGB_ICC[20:]
    Image.fromarray(ASTRONAUT).convert("CMYK").save(
        tmp_path / "in.jpg", quality=95, icc_profile=cmyk_icc
    )
    image = read_image(tmp_path / "in.jpg")
    assert image.mode == "CMYK" and image.icc_profile == cmyk_icc
    assert np.abs(as8(image).astype(int) - ASTRONAUT).mean() < 4
    for ext in ("jpg", "png", "tif"):
        write_image(tmp_path / f"out.{ext}", image.rgb, image)
        out = Image.open(tmp_path / f"out.{ext}")
        assert out.mode == "RGB" and "icc_profile" not in out.info, ext


def test_bilevel_reads_as_gray_and_writes_8bit_gray(tmp_path):
    Image.fromarray(CAMERA).convert("1").save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.mode == "1" and set(np.unique(image.rgb)) == {0.0, 1.0}
    write_image(tmp_path / "out.png", image.rgb, image)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "L"
    assert np.array_equal(np.asarray(out) > 0, np.asarray(Image.open(tmp_path / "in.png")))


def test_integer_and_float_modes_read_sensibly(tmp_path):
    samples = CAMERA.astype(np.int64) * 257  # 16-bit data in a signed 32-bit TIFF
    Image.fromarray(samples.astype(np.int32)).save(tmp_path / "int.tif")
    assert Image.open(tmp_path / "int.tif").mode == "I"
    image = read_image(tmp_path / "int.tif")  # 'I' is read as 0-65535, as PIL images are
    assert image.mode == "I" and image.bit_depth == 16
    np.testing.assert_allclose(image.rgb[..., 0], samples / 65535, atol=1e-6)

    Image.fromarray(CAMERA.astype(np.float32) / 255).save(tmp_path / "float.tif")
    image = read_image(tmp_path / "float.tif")
    assert image.mode == "F" and image.bit_depth == 16
    np.testing.assert_allclose(image.rgb[..., 1], CAMERA / 255, atol=1e-6)
    write_image(tmp_path / "out.tif", image.rgb, image)
    out = Image.open(tmp_path / "out.tif")
    assert out.mode == "I;16"
    assert np.abs(np.asarray(out).astype(int) - CAMERA.astype(int) * 257).max() <= 1


def test_webp_quality_changes_file_size(tmp_path):
    Image.fromarray(COFFEE).save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    sizes = {}
    for quality in (30, 95, None):
        write_image(tmp_path / f"q{quality}.webp", image.rgb, image, quality=quality)
        sizes[quality] = (tmp_path / f"q{quality}.webp").stat().st_size
    assert sizes[30] < 0.8 * sizes[95]
    assert sizes[None] == sizes[95]  # the default is 95
    assert read_image(tmp_path / "q95.webp").rgb.shape == image.rgb.shape


# --- 16-bit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "tif", "ppm"])
def test_16bit_rgb_round_trip_is_exact(tmp_path, ext):
    src = tmp_path / f"in.{ext}"
    save_cv2_16bit(src, COFFEE16)
    image = read_image(src)
    assert (image.bit_depth, image.mode) == (16, "RGB")
    assert np.array_equal(as16(image), COFFEE16)
    for out_ext in ("png", "tif"):
        out = tmp_path / f"out.{out_ext}"
        write_image(out, image.rgb, image)
        assert np.array_equal(read_cv2_16bit(out), COFFEE16), out_ext
        assert np.array_equal(as16(read_image(out)), COFFEE16), out_ext
    # Pillow's own 8-bit decode of our files agrees on the high bytes (orientation, channels).
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), COFFEE16 >> 8)
    write_image(tmp_path / "out.jpg", image.rgb, image)  # no 16-bit JPEG: 8 bits
    assert np.asarray(Image.open(tmp_path / "out.jpg")).dtype == np.uint8


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_rgba_alpha_is_bit_exact(tmp_path, ext):
    save_cv2_16bit(tmp_path / f"in.{ext}", COFFEE16, ALPHA16)
    image = read_image(tmp_path / f"in.{ext}")
    assert (image.bit_depth, image.mode, image.alpha.dtype) == (16, "RGBA", np.uint16)
    assert np.array_equal(image.alpha, ALPHA16) and np.array_equal(as16(image), COFFEE16)
    write_image(tmp_path / f"out.{ext}", image.rgb, image)
    assert np.array_equal(read_cv2_16bit(tmp_path / f"out.{ext}"), np.dstack([COFFEE16, ALPHA16]))
    write_image(tmp_path / "out.webp", image.rgb, image)  # 8-bit alpha there
    assert np.abs(read_image(tmp_path / "out.webp").alpha.astype(int) - ALPHA16 / 257).max() <= 0.5


def test_16bit_gray_png_round_trip(tmp_path):
    gray16 = COFFEE16[..., 1]
    assert cv2.imwrite(str(tmp_path / "in.png"), gray16)
    image = read_image(tmp_path / "in.png")
    assert (image.bit_depth, image.mode) == (16, "I;16")
    assert np.array_equal(as16(image)[..., 2], gray16)
    for ext in ("png", "tif"):
        write_image(tmp_path / f"out.{ext}", image.rgb, image)
        out = Image.open(tmp_path / f"out.{ext}")
        assert out.mode == "I;16" and np.array_equal(np.asarray(out), gray16), ext


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_gray_alpha_round_trip(tmp_path, ext):
    gray16 = COFFEE16[..., 0]
    like = ImageData(from_uint(np.dstack([gray16] * 3)), alpha=ALPHA16, bit_depth=16, mode="LA")
    write_image(tmp_path / f"out.{ext}", like.rgb, like)
    image = read_image(tmp_path / f"out.{ext}")
    assert image.bit_depth == 16 and np.array_equal(image.alpha, ALPHA16)
    assert np.array_equal(as16(image)[..., 0], gray16)
    # PNG keeps gray+alpha; TIFF stores RGBA with equal channels (Pillow lacks 16-bit LA TIFF).
    assert image.mode == ("LA" if ext == "png" else "RGBA")


def test_16bit_files_we_write_are_read_by_tifffile(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    like = ImageData(from_uint(COFFEE16), alpha=ALPHA16, bit_depth=16, mode="RGBA")
    write_image(tmp_path / "out.tif", like.rgb, like)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), np.dstack([COFFEE16, ALPHA16]))


# --- metadata -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "webp"])
@pytest.mark.parametrize("bits", [8, 16])
def test_icc_profile_bytes_survive(tmp_path, ext, bits):
    if bits == 8:
        Image.fromarray(ASTRONAUT).save(tmp_path / "in.png", icc_profile=SRGB_ICC)
    else:
        encoded = cv2.imencode(".png", np.ascontiguousarray(COFFEE16[..., ::-1]))[1].tobytes()
        iccp = b"sRGB\x00\x00" + zlib.compress(SRGB_ICC)
        (tmp_path / "in.png").write_bytes(insert_png_chunk(encoded, b"iCCP", iccp))
    image = read_image(tmp_path / "in.png")
    assert image.icc_profile == SRGB_ICC and image.bit_depth == bits
    write_image(tmp_path / f"out.{ext}", image.rgb, image)
    assert Image.open(tmp_path / f"out.{ext}").info.get("icc_profile") == SRGB_ICC
    assert read_image(tmp_path / f"out.{ext}").icc_profile == SRGB_ICC


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
def test_exif_is_preserved_with_orientation_reset(tmp_path, ext):
    stored = Image.fromarray(ASTRONAUT).transpose(STORE_FOR_ORIENTATION[6])
    stored.save(tmp_path / "in.jpg", quality=95, exif=make_exif(6))
    image = read_image(tmp_path / "in.jpg")
    assert image.info["orientation"] == 6 and image.rgb.shape == ASTRONAUT.shape
    # Kept byte for byte but for the Orientation value: equal to the same EXIF written upright.
    assert image.exif == make_exif(1).tobytes()
    write_image(tmp_path / f"out.{ext}", image.rgb, image)
    out = Image.open(tmp_path / f"out.{ext}")
    exif = out.getexif()
    assert exif.get(274) == 1
    assert (exif[271], exif[272], exif[306]) == ("Canon", "EOS R5", "2021:02:03 04:05:06")
    assert exif.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"
    again = read_image(tmp_path / f"out.{ext}")
    assert again.rgb.shape == ASTRONAUT.shape  # not turned a second time
    if ext == "jpg":
        assert again.exif == image.exif
    write_image(tmp_path / "back.jpg", again.rgb, again)  # e.g. TIFF tags back into a JPEG block
    back = Image.open(tmp_path / "back.jpg").getexif()
    assert back[272] == "EOS R5" and back.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"


def test_exif_thumbnail_link_is_cleared(tmp_path):
    raw = bytearray(make_exif(1).tobytes())
    tiff = 6  # the TIFF structure starts after b"Exif\0\0"
    order = {b"II": "<", b"MM": ">"}[bytes(raw[tiff : tiff + 2])]
    (ifd0,) = struct.unpack_from(order + "I", raw, tiff + 4)
    (count,) = struct.unpack_from(order + "H", raw, tiff + ifd0)
    link = tiff + ifd0 + 2 + 12 * count
    assert struct.unpack_from(order + "I", raw, link) == (0,)
    struct.pack_into(order + "I", raw, link, len(raw) - tiff)  # IFD1 appended: ImageWidth 64
    raw += struct.pack(order + "HHHIHHI", 1, 256, 3, 1, 64, 0, 0)
    Image.fromarray(ASTRONAUT).save(tmp_path / "in.jpg", exif=bytes(raw))
    assert Image.open(tmp_path / "in.jpg").getexif().get_ifd(ExifTags.IFD.IFD1) == {256: 64}
    image = read_image(tmp_path / "in.jpg")
    assert len(image.exif) == len(raw)
    assert struct.unpack_from(order + "I", image.exif, link) == (0,)
    assert image.exif[:link] == raw[:link] and image.exif[link + 4 :] == raw[link + 4 :]
    write_image(tmp_path / "out.jpg", image.rgb, image)
    out_exif = Image.open(tmp_path / "out.jpg").getexif()
    assert not out_exif.get_ifd(ExifTags.IFD.IFD1) and out_exif[272] == "EOS R5"


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
def test_xmp_dpi_and_comment_are_carried(tmp_path, ext):
    Image.fromarray(ASTRONAUT).save(tmp_path / "in.jpg", xmp=XMP, dpi=(300, 300), comment=b"hi")
    image = read_image(tmp_path / "in.jpg")
    assert image.info["xmp"] == XMP.replace(b'tiff:Orientation="6"', b'tiff:Orientation="1"')
    write_image(tmp_path / f"out.{ext}", image.rgb, image)
    out = Image.open(tmp_path / f"out.{ext}")
    out.load()
    xmp = out.info["xmp"]
    assert (xmp.encode() if isinstance(xmp, str) else xmp) == image.info["xmp"]
    if ext != "webp":
        assert out.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert out.info.get("comment") == (b"hi" if ext == "jpg" else None)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_exif_xmp_dpi_in_16bit_outputs(tmp_path, ext):
    # Our own 16-bit encoders write these (eXIf / iTXt / pHYs chunks, TIFF tags).
    save_cv2_16bit(tmp_path / "raw.png", COFFEE16)
    png = (tmp_path / "raw.png").read_bytes()
    png = insert_png_chunk(png, b"eXIf", make_exif(3).tobytes()[6:])
    png = insert_png_chunk(png, b"pHYs", struct.pack(">IIB", 11811, 11811, 1))  # 300 dpi
    png = insert_png_chunk(png, b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP)
    (tmp_path / "in.png").write_bytes(png)
    image = read_image(tmp_path / "in.png")
    assert image.bit_depth == 16 and image.info["orientation"] == 3
    assert np.array_equal(as16(image), COFFEE16[::-1, ::-1])
    write_image(tmp_path / f"out.{ext}", image.rgb, image)
    out = Image.open(tmp_path / f"out.{ext}")
    out.load()
    exif = out.getexif()
    assert exif.get(274) == 1 and exif[272] == "EOS R5"
    assert exif.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"
    assert out.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    xmp = out.info["xmp"]
    assert (xmp.encode() if isinstance(xmp, str) else xmp) == image.info["xmp"]
    assert b'tiff:Orientation="1"' in image.info["xmp"]
    again = read_image(tmp_path / f"out.{ext}")
    assert np.array_equal(as16(again), COFFEE16[::-1, ::-1])


def test_jpeg_app13_iptc_is_carried_between_jpegs(tmp_path):
    Image.fromarray(COFFEE).save(tmp_path / "plain.jpg")
    plain = (tmp_path / "plain.jpg").read_bytes()
    payload = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x78\x00\x05Hello"
    segment = b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
    assert plain[2:4] == b"\xff\xe0"  # SOI, then the JFIF APP0 segment: insert after it
    end_of_app0 = 4 + struct.unpack_from(">H", plain, 4)[0]
    (tmp_path / "in.jpg").write_bytes(plain[:end_of_app0] + segment + plain[end_of_app0:])
    image = read_image(tmp_path / "in.jpg")
    assert image.info["app13"] == [payload]
    write_image(tmp_path / "out.jpg", image.rgb, image)
    assert ("APP13", payload) in Image.open(tmp_path / "out.jpg").applist


# --- orientation --------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_upright_pixels(tmp_path, orientation):
    upright = Image.fromarray(np.dstack([ASTRONAUT, ALPHA8]))
    op = STORE_FOR_ORIENTATION[orientation]
    stored = upright if op is None else upright.transpose(op)
    stored.save(tmp_path / "in.png", exif=make_exif(orientation))
    stored.save(tmp_path / "in.tif", exif=make_exif(orientation))  # uncompressed 8-bit TIFF
    # the test's construction agrees with Pillow's reference implementation
    assert np.array_equal(
        np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "in.png"))), np.asarray(upright)
    )
    for name in ("in.png", "in.tif"):
        image = read_image(tmp_path / name)
        assert image.info["orientation"] == orientation, name
        assert np.array_equal(as8(image), ASTRONAUT), name
        assert np.array_equal(image.alpha, ALPHA8), name
        write_image(tmp_path / "out.png", image.rgb, image)
        assert np.array_equal(as8(read_image(tmp_path / "out.png")), ASTRONAUT), name


@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_orientation_of_16bit_png_and_tiff(tmp_path, orientation):
    tifffile = pytest.importorskip("tifffile")
    upright = np.dstack([COFFEE16, ALPHA16])
    store = {  # numpy versions of STORE_FOR_ORIENTATION, checked against Pillow below
        3: lambda a: np.rot90(a, 2),
        6: lambda a: np.rot90(a, 1),
        7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    }[orientation]
    stored = np.ascontiguousarray(store(upright))
    check = Image.fromarray((stored >> 8).astype(np.uint8))
    check.save(tmp_path / "check.png", exif=make_exif(orientation))
    rotated = ImageOps.exif_transpose(Image.open(tmp_path / "check.png"))
    assert np.array_equal(np.asarray(rotated), upright >> 8)

    save_cv2_16bit(tmp_path / "raw.png", stored[..., :3], stored[..., 3])
    exif = make_exif(orientation).tobytes()[6:]
    png = insert_png_chunk((tmp_path / "raw.png").read_bytes(), b"eXIf", exif)
    (tmp_path / "in.png").write_bytes(png)
    orientation_tag = (274, 3, 1, orientation, True)
    tifffile.imwrite(
        tmp_path / "in.tif",
        stored,
        photometric="rgb",
        extrasamples=[2],
        extratags=[orientation_tag],
    )
    for path in (tmp_path / "in.png", tmp_path / "in.tif"):
        image = read_image(path)
        assert image.bit_depth == 16 and image.info["orientation"] == orientation, path.name
        assert np.array_equal(as16(image), COFFEE16), path.name
        assert np.array_equal(image.alpha, ALPHA16), path.name


# --- read errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"no such file: .*nope.png"):
        read_image(tmp_path / "nope.png")


def test_directory(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match=r"folder.png.*directory"):
        read_image(tmp_path / "folder.png")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty.jpg.*empty"):
        read_image(tmp_path / "empty.jpg")


def test_text_file_named_png_and_unsupported_format(tmp_path):
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    (tmp_path / "archive.jpg").write_bytes(zlib.compress(b"x" * 1000))
    for name in ("notes.png", "archive.jpg"):
        with pytest.raises(ImageReadError, match=f"{name}.*not an image") as info:
            read_image(tmp_path / name)
        assert info.value.__cause__ is not None


@pytest.mark.parametrize("kind", ["jpg", "png", "png16", "tif"])
def test_truncated_files_are_errors_not_grey_pictures(tmp_path, kind):
    path = tmp_path / f"whole.{kind[:3]}"
    if kind == "png16":
        save_cv2_16bit(path, COFFEE16)
    else:
        Image.fromarray(COFFEE).save(
            path, **({"compression": "tiff_deflate"} if kind == "tif" else {})
        )
    whole = path.read_bytes()
    cut = tmp_path / f"cut.{kind[:3]}"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(ImageReadError, match="cut"):
        read_image(cut)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height RGB pixels, with almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(bomb_png(60000, 60000))
    with monkeypatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", None)
        assert Image.open(tmp_path / "bomb.png").size == (60000, 60000)  # a well-formed header
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as info:
        read_image(tmp_path / "bomb.png")
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "bomb.png" in message and "60000×60000" in message and "200,000,000" in message
    assert "max_pixels" in message
    assert isinstance(info.value, ValueError)


def test_pixel_limit_is_overridable(tmp_path):
    Image.fromarray(COFFEE).save(tmp_path / "in.png")  # 10,800 pixels
    with pytest.raises(ImageTooLargeError, match="10,800 pixels"):
        read_image(tmp_path / "in.png", max_pixels=10_000)
    assert read_image(tmp_path / "in.png", max_pixels=10_800).rgb.shape == COFFEE.shape
    assert read_image(tmp_path / "in.png", max_pixels=None).rgb.shape == COFFEE.shape
    (tmp_path / "bomb.png").write_bytes(bomb_png(3000, 3000))
    with pytest.raises(ImageReadError) as info:  # passes the guard, then has no pixel data
        read_image(tmp_path / "bomb.png", max_pixels=None)
    assert not isinstance(info.value, ImageTooLargeError)
    with pytest.raises(OptionError):
        read_image(tmp_path / "in.png", max_pixels=0)


def test_our_limit_replaces_pillows_own(tmp_path, monkeypatch):
    Image.fromarray(COFFEE).save(tmp_path / "in.png")  # 10,800 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)  # Pillow's error above 4,000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "in.png").rgb.shape == COFFEE.shape
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # Pillow would only warn
        assert read_image(tmp_path / "in.png").rgb.shape == COFFEE.shape
    assert Image.MAX_IMAGE_PIXELS == 6_000  # restored
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)
    with pytest.raises(ImageTooLargeError, match="10,800"):
        read_image(tmp_path / "in.png", max_pixels=5_000)


# --- write errors and atomicity ------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_unknown_extension(tmp_path):
    for name in ("out.gif", "out"):
        with pytest.raises(ImageWriteError, match=name) as info:
            write_image(tmp_path / name, COFFEE / 255.0)
        assert ".png" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_before_writing(tmp_path):
    rgb = COFFEE / 255.0
    cases = [
        (rgb[..., :2], InvalidImageError, {}),
        (rgb.tolist(), ImageTypeError, {}),
        (rgb.astype(np.int32), ImageTypeError, {}),
        (np.where(rgb > 0.5, np.nan, rgb), InvalidImageError, {}),
        (rgb, OptionError, {"quality": 0}),
        (rgb, ImageTypeError, {"like": "RGB"}),
        (rgb, InvalidImageError, {"like": ImageData(rgb, alpha=ALPHA8)}),  # alpha 96×128
    ]
    for value, error, kwargs in cases:
        with pytest.raises(error):
            write_image(tmp_path / "out.png", value, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_uint_input_and_no_like(tmp_path):
    write_image(tmp_path / "a.png", COFFEE)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), COFFEE)
    write_image(tmp_path / "b.png", COFFEE16)
    assert np.array_equal(read_cv2_16bit(tmp_path / "b.png"), COFFEE16)


def test_interrupt_during_encoding_leaves_no_file(tmp_path, monkeypatch):
    Image.fromarray(COFFEE).save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    original = _encoders._save_with_pillow
    seen = []

    def encode_then_interrupt(f, *args):
        original(f, *args)  # the temporary file is complete...
        seen.extend(leftovers(tmp_path))
        raise KeyboardInterrupt  # ...and then the user presses Ctrl-C

    monkeypatch.setattr(_encoders, "_save_with_pillow", encode_then_interrupt)
    (tmp_path / "out.jpg").write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.jpg", image.rgb, image)
    assert len(seen) == 1 and _atomic._TEMP_NAME.fullmatch(seen[0])
    assert leftovers(tmp_path) == []
    assert (tmp_path / "out.jpg").read_bytes() == b"previous"  # untouched


def test_interrupt_inside_our_png_encoder_leaves_no_file(tmp_path, monkeypatch):
    original = _encoders._png_chunk

    def chunk_then_interrupt(f, kind, payload):
        original(f, kind, payload)
        if kind == b"IDAT":
            raise KeyboardInterrupt

    monkeypatch.setattr(_encoders, "_png_chunk", chunk_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.png", COFFEE16)
    assert list(tmp_path.iterdir()) == []


def test_encoder_failure_is_a_write_error_and_leaves_no_file(tmp_path):
    too_wide = np.zeros((1, 20_000, 3), np.float32)  # WebP holds at most 16383 pixels a side
    with pytest.raises(ImageWriteError, match=r"out.webp.*16383") as info:
        write_image(tmp_path / "out.webp", too_wide)
    assert isinstance(info.value.__cause__, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_exif_too_long_for_jpeg_is_left_out_with_a_warning(tmp_path):
    too_long = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00" + b"\x00" * 70_000
    like = ImageData(COFFEE / 255.0, exif=too_long)
    with pytest.warns(UserWarning, match=r"EXIF metadata left out"):
        write_image(tmp_path / "out.jpg", COFFEE / 255.0, like)
    assert not Image.open(tmp_path / "out.jpg").getexif()


def test_filesystem_errors_name_the_path(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder.png").mkdir()
    targets = [
        tmp_path / "missing" / "out.png",
        tmp_path / "a_file" / "out.png",
        tmp_path / "folder.png",
    ]
    for target in targets:
        with pytest.raises(ImageWriteError) as info:
            write_image(target, COFFEE / 255.0)
        assert str(target) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "folder.png"]
    assert list((tmp_path / "folder.png").iterdir()) == []


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_disk_full_midway_is_a_write_error_and_leaves_no_file(tmp_path):
    # A child process whose files may not exceed 20 kB: each write fails half-way with EFBIG,
    # as on a full disk, even when running as root. One line of output per target.
    script = """
import resource, signal, sys
import numpy as np
from exposure_slot.errors import ImageWriteError
from exposure_slot.files import write_image
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
noise = np.random.default_rng(0).integers(0, 65536, (200, 200, 3), dtype=np.uint16)
for target in sys.argv[1:]:
    try:
        write_image(target, noise if "16" in target else (noise >> 8).astype(np.uint8))
    except ImageWriteError as exc:
        print(exc)
"""
    targets = [str(tmp_path / name) for name in ("out.png", "out16.png", "out.tif", "out.jpg")]
    result = subprocess.run(
        [sys.executable, "-c", script, *targets], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(targets)
    for target, line in zip(targets, lines, strict=True):
        assert target in line and "too large" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores modes")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError, match=r"locked.*ermission"):
            write_image(folder / "out.png", COFFEE / 255.0)
    finally:
        folder.chmod(0o700)


def test_written_file_gets_normal_permissions(tmp_path):
    write_image(tmp_path / "out.png", COFFEE)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_ctrl_c_right_after_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C is raised as soon as os.open returns, before the writer holds the descriptor."""
    real_open = os.open

    def open_then_interrupt(path, flags, mode=0o777):
        os.close(real_open(path, flags, mode))
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.png", data.coffee())
    assert list(tmp_path.iterdir()) == []
