"""Reading files: damage is an error, never a picture; one file gives one set of pixels.

Every file here is made in the test: real corrupt JPEG/PNG/TIFF bytes, real multi-frame files,
16-bit files from encoders independent of ours (OpenCV, tifffile).
"""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data
from test_files import png_chunk

from exposure_slot.errors import ImageReadError, InvalidImageError
from exposure_slot.files import read_image, to_uint, write_image
from exposure_slot.pixels import to_rgb_float

tifffile = pytest.importorskip("tifffile")

RGB8 = np.ascontiguousarray(data.astronaut()[40:136, 180:308])  # 96×128×3, non-square
RNG = np.random.default_rng(22)
RGB16 = (RGB8.astype(np.uint16) * 257 + RNG.integers(0, 257, RGB8.shape)).astype(np.uint16)
DARK16 = (RGB16 // 100).astype(np.uint16)  # max 655 of 65535: every high byte is 0, 1 or 2
ALPHA16 = RNG.integers(0, 65536, RGB8.shape[:2], dtype=np.uint16)
# numpy forms of how the stored pixels must be turned for EXIF orientation o to show them
# upright (the inverse of exif_transpose); checked against Pillow in the first test.
STORE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    8: lambda a: np.rot90(a, -1),
}


def png16(pixels: np.ndarray, *chunks: bytes) -> bytes:
    """A 16-bit PNG from OpenCV's encoder (RGB order in), extra chunks right after IHDR."""
    bgr = pixels if pixels.ndim == 2 else pixels[..., [2, 1, 0, *range(3, pixels.shape[2])]]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(bgr))
    assert ok
    return bytes(encoded[:33]) + b"".join(chunks) + bytes(encoded[33:])


def exif_chunk(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return png_chunk(b"eXIf", exif.tobytes()[6:])


def as16(path: Path) -> np.ndarray:
    return to_uint(read_image(path).rgb, 16)


def jpeg_bytes(pixels: np.ndarray = RGB8, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


# --- item 4: orientation of 16-bit files, however dark ------------------------------------------


def test_store_table_is_the_inverse_of_pillows_exif_transpose(tmp_path):
    from PIL import ImageOps

    for orientation, store in STORE.items():
        exif = Image.Exif()
        exif[274] = orientation
        Image.fromarray(np.ascontiguousarray(store(RGB8))).save(tmp_path / "o.png", exif=exif)
        upright = ImageOps.exif_transpose(Image.open(tmp_path / "o.png"))
        assert np.array_equal(np.asarray(upright), RGB8), orientation


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("pixels", [DARK16, RGB16], ids=["dark", "bright"])
def test_16bit_png_and_tiff_are_always_oriented(tmp_path, orientation, pixels):
    """A dark 16-bit PNG (max 655) with orientation 2/3/4 used to be written un-rotated."""
    stored = np.ascontiguousarray(STORE[orientation](np.dstack([pixels, ALPHA16])))
    (tmp_path / "in.png").write_bytes(png16(stored, exif_chunk(orientation)))
    layouts = {"strips.tif": {}, "tiles.tif": {"tile": (16, 16)}, "big.tif": {"byteorder": ">"}}
    for name, layout in layouts.items():
        tifffile.imwrite(
            tmp_path / name,
            stored,
            photometric="rgb",
            extrasamples=[2],
            extratags=[(274, 3, 1, orientation, True)],
            **layout,
        )
    for name in ("in.png", *layouts):
        image = read_image(tmp_path / name)
        assert image.info["orientation"] == orientation, name
        assert np.array_equal(to_uint(image.rgb, 16), pixels), name
        assert np.array_equal(image.alpha, ALPHA16), name


# --- items 5 and 10: damaged files are errors ----------------------------------------------------


def scan_start(jpeg: bytes) -> int:
    return jpeg.index(b"\xff\xda")


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_with_a_cut_scan_that_still_ends_in_eoi_is_an_error(tmp_path, progressive):
    whole = jpeg_bytes(progressive=progressive)
    start = scan_start(whole)
    cut = whole[: start + (len(whole) - start) * 3 // 10] + b"\xff\xd9"
    (tmp_path / "cut.jpg").write_bytes(cut)
    with pytest.raises(ImageReadError, match=r"cut\.jpg.*(Corrupt JPEG data|Premature end)"):
        read_image(tmp_path / "cut.jpg")


def test_jpeg_whose_header_claims_a_larger_picture_is_an_error(tmp_path):
    jpeg = bytearray(jpeg_bytes())
    sof = jpeg.index(b"\xff\xc0")
    height, width = struct.unpack_from(">HH", jpeg, sof + 5)
    struct.pack_into(">HH", jpeg, sof + 5, height * 2, width)
    (tmp_path / "tall.jpg").write_bytes(bytes(jpeg))
    with pytest.raises(ImageReadError, match=r"tall\.jpg.*Corrupt JPEG data"):
        read_image(tmp_path / "tall.jpg")


def test_jpeg_with_corrupt_scan_bytes_is_an_error(tmp_path):
    jpeg = bytearray(jpeg_bytes())
    start = scan_start(jpeg) + 20
    jpeg[start + 100 : start + 140] = b"\xff\x00" * 20  # stuffed 0xFF bytes: bad Huffman codes
    (tmp_path / "bad.jpg").write_bytes(bytes(jpeg))
    with pytest.raises(ImageReadError, match=r"bad\.jpg.*Corrupt JPEG data"):
        read_image(tmp_path / "bad.jpg")


def test_tiny_jpeg_claiming_14000_squared_is_refused_quickly(tmp_path):
    """3 KB claiming 14000×14000: it used to take 47 s and 7.45 GB to give a grey picture."""
    jpeg = bytearray(jpeg_bytes(RGB8[:64, :64]))
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, 14000, 14000)
    (tmp_path / "huge.jpg").write_bytes(bytes(jpeg))
    assert len(jpeg) < 4096
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"huge\.jpg.*Corrupt JPEG data"):
        read_image(tmp_path / "huge.jpg")
    assert time.perf_counter() - start < 2.0


def test_intact_jpegs_still_read(tmp_path):
    for name, options in {"base.jpg": {}, "prog.jpg": {"progressive": True}}.items():
        (tmp_path / name).write_bytes(jpeg_bytes(**options))
        assert np.abs(to_uint(read_image(tmp_path / name).rgb, 8) - RGB8.astype(int)).mean() < 5
    Image.fromarray(RGB8[..., 0]).save(tmp_path / "gray.jpg")
    assert read_image(tmp_path / "gray.jpg").mode == "L"


def test_libjpeg_warnings_are_not_left_on_stderr(tmp_path, capfd):
    whole = jpeg_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "cut.jpg")
    assert capfd.readouterr().err == ""


def test_png_with_a_flipped_bit_in_idat_is_an_error(tmp_path):
    Image.fromarray(RGB8).save(tmp_path / "good.png")
    png = bytearray((tmp_path / "good.png").read_bytes())
    idat = png.index(b"IDAT")
    png[idat + 4 + 300] ^= 0x10
    (tmp_path / "flip.png").write_bytes(bytes(png))
    with pytest.raises(ImageReadError, match=r"flip\.png.*'IDAT' chunk fails its CRC"):
        read_image(tmp_path / "flip.png")
    assert np.array_equal(to_uint(read_image(tmp_path / "good.png").rgb, 8), RGB8)


@pytest.mark.parametrize("bits", [8, 16])
def test_deflate_tiff_with_a_flipped_byte_is_an_error(tmp_path, bits):
    pixels = RGB8 if bits == 8 else RGB16
    tifffile.imwrite(tmp_path / "good.tif", pixels, photometric="rgb", compression="zlib")
    tiff = bytearray((tmp_path / "good.tif").read_bytes())
    page = tifffile.TiffFile(io.BytesIO(bytes(tiff))).pages[0]
    offset, count = page.dataoffsets[0], page.databytecounts[0]
    tiff[offset + count // 2] ^= 0x01
    (tmp_path / "flip.tif").write_bytes(bytes(tiff))
    with pytest.raises(
        ImageReadError, match=r"flip\.tif.*(compressed data is corrupt|Deflate data)"
    ):
        read_image(tmp_path / "flip.tif")
    assert read_image(tmp_path / "good.tif").bit_depth == bits


# --- item 6: one mode policy for files and PIL images -------------------------------------------


def both_paths(path: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_image(path).rgb, to_rgb_float(Image.open(path))


@pytest.mark.parametrize(
    "pixels",
    [
        RGB8,
        RGB8[..., 0],
        RGB16[..., 0],
        RGB16[..., 0].astype(np.int32),  # 16-bit data in a 32-bit integer TIFF (mode I)
        RGB8[..., 0].astype(np.float32) / 255,  # mode F
        Image.fromarray(RGB8).quantize(64),  # mode P
        Image.fromarray(RGB8[..., 0]).convert("1"),
    ],
    ids=["RGB", "L", "I;16", "I", "F", "P", "1"],
)
def test_a_file_gives_the_same_pixels_through_read_image_and_the_api(tmp_path, pixels):
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(tmp_path / "in.tif")
    from_file, from_pil = both_paths(tmp_path / "in.tif")
    np.testing.assert_allclose(from_file, from_pil, atol=1e-6)
    assert from_file.max() > 0.5


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (RGB8[..., 0].astype(np.float32), r"values from 1 to 251"),  # a 0-255 float TIFF
        (np.full((4, 5), np.nan, np.float32), "NaN"),
        (RGB8[..., 0].astype(np.int32) * 2**23, "values from"),  # full 32-bit range
        (-RGB8[..., 0].astype(np.int32), "values from"),
    ],
    ids=["float-0-255", "float-nan", "int32-full-range", "int32-negative"],
)
def test_out_of_range_files_raise_on_both_paths(tmp_path, corrector, pixels, match):
    Image.fromarray(pixels).save(tmp_path / "odd.tif")
    with pytest.raises(InvalidImageError, match=rf"odd\.tif.*{match}"):
        read_image(tmp_path / "odd.tif")
    with pytest.raises(InvalidImageError, match=match):
        corrector(Image.open(tmp_path / "odd.tif"))


# --- item 7: the full-resolution page; multi-frame files refused ---------------------------------


@pytest.mark.parametrize("thumbnail_first", [True, False])
def test_tiff_reduced_resolution_page_is_skipped(tmp_path, thumbnail_first):
    thumbnail = RGB8[::8, ::8]  # 12×16
    with tifffile.TiffWriter(tmp_path / "in.tif") as tif:
        pages = [(thumbnail, 1), (RGB8, 0)]
        for pixels, subfiletype in pages if thumbnail_first else pages[::-1]:
            tif.write(pixels, photometric="rgb", subfiletype=subfiletype)
    image = read_image(tmp_path / "in.tif")
    assert np.array_equal(to_uint(image.rgb, 8), RGB8)


def animated(tmp_path: Path, ext: str) -> Path:
    frames = [Image.fromarray(RGB8), Image.fromarray(RGB8[::-1].copy())]
    path = tmp_path / f"anim.{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


@pytest.mark.parametrize("ext", ["gif", "png", "webp", "tif"])
def test_multi_frame_files_are_refused(tmp_path, ext):
    path = animated(tmp_path, ext)
    assert getattr(Image.open(path), "n_frames", 1) == 2
    with pytest.raises(ImageReadError, match=rf"anim\.{ext}.* holds 2 (frames|pages)"):
        read_image(path)


def test_command_line_reports_a_multi_frame_file_and_goes_on(tmp_path, capsys):
    from exposure_slot import cli

    path = animated(tmp_path, "webp")
    Image.fromarray(RGB8).save(tmp_path / "still.png")
    weights = Path(__file__).parent / "data" / "level2_seed0.pth"
    argv = ["correct", path, tmp_path / "still.png", "-o", tmp_path / "out", "--weights", weights]
    assert cli.main([*map(str, [*argv, "--device", "cpu", "-q"])]) == 1
    assert "anim.webp" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["still.png"]


# --- item 9: 16-bit transparency, planar and associated-alpha TIFF -------------------------------


def test_16bit_gray_png_trns_becomes_alpha(tmp_path):
    gray = RGB16[..., 1].copy()
    key = int(gray[5, 7])
    (tmp_path / "in.png").write_bytes(png16(gray, png_chunk(b"tRNS", struct.pack(">H", key))))
    image = read_image(tmp_path / "in.png")
    assert np.array_equal(image.alpha, np.where(gray == key, 0, 65535))
    assert np.array_equal(to_uint(image.rgb[..., 0], 16), gray)
    write_image(tmp_path / "out.png", image.rgb, image)
    out = read_image(tmp_path / "out.png")
    assert np.array_equal(out.alpha, image.alpha) and out.bit_depth == 16


def test_16bit_rgb_png_trns_becomes_alpha(tmp_path):
    key = tuple(int(v) for v in RGB16[5, 7])
    trns = png_chunk(b"tRNS", struct.pack(">HHH", *key))
    (tmp_path / "in.png").write_bytes(png16(RGB16, trns))
    image = read_image(tmp_path / "in.png")
    colour = to_uint(image.rgb, 16)
    assert np.array_equal(colour, RGB16)
    assert np.array_equal(image.alpha, np.where((colour == key).all(axis=2), 0, 65535))


@pytest.mark.parametrize(("compression", "predictor"), [(None, False), ("zlib", True)])
@pytest.mark.parametrize("pixels", [RGB16, DARK16], ids=["bright", "dark"])
def test_planar_16bit_tiff_reads_exactly(tmp_path, compression, predictor, pixels):
    stored = np.ascontiguousarray(STORE[6](np.dstack([pixels, ALPHA16])).transpose(2, 0, 1))
    tifffile.imwrite(
        tmp_path / "in.tif",
        stored,
        photometric="rgb",
        planarconfig="separate",
        extrasamples=[2],
        compression=compression,
        predictor=predictor,
        rowsperstrip=7,
        extratags=[(274, 3, 1, 6, True)],
    )
    image = read_image(tmp_path / "in.tif")
    assert np.array_equal(to_uint(image.rgb, 16), pixels)
    assert np.array_equal(image.alpha, ALPHA16)


def test_16bit_tiff_with_associated_alpha_is_unpremultiplied(tmp_path):
    alpha = np.maximum(ALPHA16, 1)
    premultiplied = np.rint(RGB16 * (alpha[..., None] / 65535)).astype(np.uint16)
    stored = np.dstack([premultiplied, alpha])
    tifffile.imwrite(tmp_path / "in.tif", stored, photometric="rgb", extrasamples=[1])
    image = read_image(tmp_path / "in.tif")
    assert np.array_equal(image.alpha, alpha)
    colour = to_uint(image.rgb, 16).astype(np.int64)
    # Un-premultiplied colour is exact up to the rounding of the stored value, scaled up.
    tolerance = 0.5 * 65535 / alpha[..., None] + 0.5
    assert (np.abs(colour - RGB16) <= tolerance).all()
