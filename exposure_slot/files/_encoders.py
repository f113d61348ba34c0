"""The encoders: Pillow's where it writes what we need, and our own 16-bit PNG and TIFF writers.

Pillow writes 8-bit PNG, JPEG (at quality >= 90 with 4:4:4 chroma), WebP and BMP, with our
metadata and mark added. Pillow cannot write 16-bit PNG, so our writer does; TIFF output
always goes through ours (Deflate with horizontal predictor, unassociated alpha). 16-bit
gray+alpha comes here as RGBA with equal colour channels for TIFF, since Pillow cannot open
16-bit gray+alpha TIFF.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, TiffImagePlugin

from exposure_slot.errors import ImageWriteError

from ._formats import JPEG_FORMAT, PNG_SAMPLES, PNG_SIGNATURE, TIFF_FORMAT, Format
from ._mark import JPEG_MARK, MARK, mark_bmp, webp_with_mark
from ._metadata import EXIF_PREFIX, descriptive_exif_tags

_JPEG_SEGMENT_MAX = 65533  # payload bytes of one JPEG marker segment
_JPEG_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_PNG_KEY = "XML:com.adobe.xmp"


@dataclass
class Encoded:
    """Pixels ready for an encoder (H×W×C uint8/uint16, C = 1..4) plus the metadata to embed."""

    pixels: np.ndarray
    icc_profile: bytes | None
    exif: bytes | None
    xmp: bytes | None
    dpi: tuple[float, float] | None
    comment: bytes | None
    app13: list[bytes]


def encode(f: BinaryIO, encoded: Encoded, spec: Format, quality: int) -> None:
    """Encode with our TIFF / 16-bit PNG writers where Pillow falls short, else with Pillow."""
    if spec is TIFF_FORMAT:
        _write_tiff(f, encoded)
    elif spec.pillow_name == "PNG" and encoded.pixels.dtype == np.uint16:
        _write_png16(f, encoded)
    else:
        _save_with_pillow(f, encoded, spec, quality)


def _save_with_pillow(f: BinaryIO, encoded: Encoded, spec: Format, quality: int) -> None:
    """Encode with Pillow, passing the metadata it embeds and adding our mark."""
    pixels = encoded.pixels
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    params: dict[str, Any] = {}
    if encoded.icc_profile:
        params["icc_profile"] = encoded.icc_profile
    if encoded.exif:
        params["exif"] = encoded.exif
    if encoded.dpi and spec.pillow_name != "WEBP":
        params["dpi"] = encoded.dpi
    if spec.lossy:
        params["quality"] = quality
    if spec is JPEG_FORMAT:
        if quality >= 90:
            params["subsampling"] = 0  # 4:4:4
        if encoded.comment:
            params["comment"] = encoded.comment
        segments = [(0xED, data) for data in encoded.app13] + [(0xEF, JPEG_MARK)]  # APP13, 15
        params["extra"] = b"".join(_jpeg_segment(marker, data) for marker, data in segments)
    if spec.pillow_name == "PNG":
        pnginfo = PngImagePlugin.PngInfo()
        pnginfo.add_text("Software", MARK)
        if encoded.xmp:
            pnginfo.add_itxt(_XMP_PNG_KEY, encoded.xmp.decode("utf-8", "replace"))
        params["pnginfo"] = pnginfo
    elif encoded.xmp:
        params["xmp"] = encoded.xmp
    if spec.pillow_name == "WEBP":
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", **params)
        f.write(webp_with_mark(buffer.getvalue(), pixels.shape))
        return
    image.save(f, format=spec.pillow_name, **params)
    if spec.pillow_name == "BMP":
        mark_bmp(f)


def fit_jpeg_segments(encoded: Encoded, target: Path) -> Encoded:
    """Leave out (with a warning) the EXIF, XMP, comment or APP13 blocks that are too long
    for a JPEG marker segment, rather than failing the whole file."""
    sizes = {
        "EXIF": len(encoded.exif or b""),
        "XMP": len(_JPEG_XMP_PREFIX) + len(encoded.xmp) if encoded.xmp else 0,
        "comment": len(encoded.comment or b""),
    }
    too_long = [name for name, size in sizes.items() if size > _JPEG_SEGMENT_MAX]
    app13 = [data for data in encoded.app13 if len(data) <= _JPEG_SEGMENT_MAX]
    if len(app13) < len(encoded.app13):
        too_long.append("IPTC/Photoshop (APP13)")
    if not too_long:
        return encoded
    warnings.warn(
        f"{target}: {', '.join(too_long)} metadata left out: longer than a JPEG segment "
        f"holds ({_JPEG_SEGMENT_MAX} bytes)",
        stacklevel=3,
    )
    return replace(
        encoded,
        exif=None if "EXIF" in too_long else encoded.exif,
        xmp=None if "XMP" in too_long else encoded.xmp,
        comment=None if "comment" in too_long else encoded.comment,
        app13=app13,
    )


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    """A JPEG marker segment: marker, length, payload."""
    if len(payload) > _JPEG_SEGMENT_MAX:
        raise ImageWriteError(f"a JPEG APP segment of {len(payload)} bytes is too long")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


# PNG ----------------------------------------------------------------------------------------

# Channels -> colour type (gray, gray+alpha, RGB, RGBA; palette is never written).
_PNG_COLOUR_TYPES = {samples: kind for kind, samples in PNG_SAMPLES.items() if kind != 3}
_BAND_BYTES = 1 << 22
_ZLIB_LEVEL = 3  # a fast level: the higher ones take much longer for little smaller photos


def _write_png16(f: BinaryIO, encoded: Encoded) -> None:
    """Write a 16-bit PNG (Pillow cannot) with iCCP, pHYs, eXIf and XMP iTXt chunks."""
    pixels = encoded.pixels
    height, width, channels = pixels.shape
    f.write(PNG_SIGNATURE)
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    _png_chunk(f, b"IHDR", header)
    if encoded.icc_profile:
        _png_chunk(f, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(encoded.icc_profile))
    if encoded.dpi:
        per_metre = [round(v / 0.0254) for v in encoded.dpi]
        _png_chunk(f, b"pHYs", struct.pack(">IIB", *per_metre, 1))
    if encoded.exif:
        _png_chunk(f, b"eXIf", encoded.exif[len(EXIF_PREFIX) :])
    if encoded.xmp:
        _png_chunk(f, b"iTXt", _XMP_PNG_KEY.encode() + b"\x00\x00\x00\x00\x00" + encoded.xmp)
    _png_chunk(f, b"tEXt", b"Software\x00" + MARK.encode())
    rows = pixels.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    compressor = zlib.compressobj(_ZLIB_LEVEL)
    band = max(1, _BAND_BYTES // rows.shape[1])
    previous = np.zeros(rows.shape[1], dtype=np.uint8)
    for start in range(0, height, band):
        chunk = rows[start : start + band]
        data = compressor.compress(_png_filter(chunk, previous, bpp=channels * 2).tobytes())
        if data:
            _png_chunk(f, b"IDAT", data)
        previous = chunk[-1]
    _png_chunk(f, b"IDAT", compressor.flush())
    _png_chunk(f, b"IEND", b"")


def _png_chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
    """A PNG chunk: length, kind, data, CRC."""
    f.write(struct.pack(">I", len(data)) + kind + data)
    f.write(struct.pack(">I", zlib.crc32(kind + data)))


def _png_filter(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Paeth-filter PNG scanlines (type 4 on every row).

    On photographs it compresses about as well as libpng's per-row adaptive choice, at a
    fraction of the cost of trying all five filters in numpy.
    """
    up = np.vstack([previous[None], rows[:-1]])
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    up_left = np.zeros_like(rows)
    up_left[:, bpp:] = up[:, :-bpp]
    a, b, c = (x.astype(np.int16) for x in (left, up, up_left))
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    predicted = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 4
    out[:, 1:] = rows - predicted.astype(np.uint8)
    return out


# TIFF ---------------------------------------------------------------------------------------

_TIFF_HEADER = b"II*\x00\x08\x00\x00\x00"  # little-endian, first directory at offset 8


def _write_tiff(f: BinaryIO, encoded: Encoded) -> None:
    """Write a baseline TIFF (8 or 16 bits, 1-4 samples, Deflate + horizontal predictor).

    Pillow serialises the directory (with the EXIF tags merged into it and the Exif / GPS
    sub-directories); the strips follow it. Pillow offsets StripOffsets by the directory size.
    """
    pixels = encoded.pixels
    height, width, channels = pixels.shape
    bits = 8 * pixels.dtype.itemsize
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=_TIFF_HEADER)
    if encoded.exif:
        exif = Image.Exif()
        exif.load(encoded.exif)
        for tag, value in descriptive_exif_tags(exif).items():
            ifd[tag] = value
    rows_per_strip = max(1, _BAND_BYTES // (width * channels * pixels.dtype.itemsize))
    strips = [
        _tiff_strip(pixels[start : start + rows_per_strip])
        for start in range(0, height, rows_per_strip)
    ]
    ifd[256], ifd[257] = width, height
    ifd[305] = MARK  # Software: replaces the camera's (the picture is now ours)
    ifd[258] = (bits,) * channels
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 1 if channels <= 2 else 2  # BlackIsZero or RGB
    ifd[274] = 1
    ifd[277] = channels
    ifd[278] = rows_per_strip
    ifd[273] = tuple(np.cumsum([0] + [len(s) for s in strips[:-1]]).tolist())
    ifd[279] = tuple(len(s) for s in strips)
    ifd[284] = 1  # chunky
    ifd[317] = 2  # horizontal differencing
    ifd[339] = (1,) * channels  # unsigned integers
    if channels in (2, 4):
        ifd[338] = (2,)  # unassociated alpha
    if encoded.dpi:
        ifd[282], ifd[283] = (
            TiffImagePlugin.IFDRational(Fraction(v).limit_denominator(10000)) for v in encoded.dpi
        )
        ifd[296] = 2  # inch
    if encoded.icc_profile:
        ifd[34675] = encoded.icc_profile
    if encoded.xmp:
        ifd[700] = encoded.xmp
    f.write(_TIFF_HEADER + ifd.tobytes(len(_TIFF_HEADER)))
    for strip in strips:
        f.write(strip)


def _tiff_strip(rows: np.ndarray) -> bytes:
    """One strip: predictor 2 (each sample minus its left neighbour, wrapping), little-endian,
    Deflate-compressed."""
    predicted = rows.astype(rows.dtype.newbyteorder("<"))
    predicted[:, 1:] -= rows[:, :-1]
    return zlib.compress(predicted.tobytes(), _ZLIB_LEVEL)
