"""Decode policy: an opened image file's pixels as float32 RGB, its alpha and what it stores.

* Orientation: the EXIF Orientation tag (all 8 values, ``PIL.ImageOps.exif_transpose``
  semantics) is applied to the pixels and the alpha.
* Every Pillow mode is read: grayscale ('1', 'L', 'LA', 'I;16', 'I', 'F') into equal RGB
  channels, palette ('P') as RGB (RGBA where the palette has transparency), CMYK by Pillow's
  conversion (it undoes the inverted Adobe CMYK JPEG convention; not colour-managed). 'I'
  (32-bit integer) and 'F' (float) follow the rule PIL images get
  (:func:`exposure_slot.pixel_values.pil_gray_values`), so a file gives the same pixels through
  ``read_image`` and through ``Image.open``: 'I' is 0-65535 (values outside are refused), 'F'
  must lie in [0, 1] (NaN and 0-255 floats are refused). ``ImageData.mode`` keeps the file's
  mode, so that the writer knows the colour kind to write back.
* Alpha keeps its dtype. A PNG's tRNS colour becomes alpha (0 where the colour matches, else
  opaque), at 16 bits too. TIFF associated (premultiplied) alpha is un-premultiplied.
* 16 bits per sample are kept. Pillow decodes 16-bit RGB, RGBA and gray+alpha to 8 bits, so
  those pixels are decoded with OpenCV (metadata still comes from Pillow), and planar 16-bit
  TIFF, which both decode wrongly, by our own strip reader.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import cv2
import numpy as np
from PIL import Image

from exposure_slot.errors import ImageReadError
from exposure_slot.pixel_values import from_uint, pil_gray_values

from ._integrity import check_intact
from ._metadata import exif_of, exif_orientation, extra_info
from ._opencv import opencv_decode
from ._tiff_layout import DEFLATE, associated_alpha, byte_order, rows_per_strip, strips, tag_ints


@dataclass
class ImageData:
    """A decoded image: the colour to correct plus what is needed to write it back alike.

    ``rgb`` is H×W×3 float32 in [0, 1], upright (EXIF orientation applied). ``alpha`` is H×W
    in the file's own dtype (uint8 or uint16), oriented like ``rgb``. ``bit_depth`` is 8 or 16
    (the precision ``rgb`` was decoded at). ``mode`` is Pillow's mode of the file ('RGB', 'L',
    'RGBA', 'LA', 'P', 'CMYK', 'I;16', ...): it picks the colour kind written back. ``exif``
    holds Orientation = 1. ``info`` carries 'dpi' (x, y), 'orientation' (the file's original
    EXIF value), 'xmp' (bytes), 'comment' and 'app13' (JPEG) when the file had them.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    mode: str = "RGB"
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)


def decode(im: Image.Image, fp: BinaryIO, name: str) -> ImageData:
    """Check the file for damage, decode it fully and gather its metadata."""
    bits, mode = _storage(im)  # before load(), which clears the tile list it reads
    orientation = exif_orientation(im)  # the file's: Pillow >= 10 drops a TIFF's while loading
    opencv_16bit = bits == 16 and mode in ("RGB", "RGBA", "LA")
    check_intact(im, fp, name)
    if opencv_16bit and im.format == "TIFF" and im.tag_v2.get(284, 1) == 2:
        # Planar 16-bit TIFF: OpenCV and Pillow both decode it wrongly.
        colour, alpha = _read_planar_tiff16(im, fp, name)
        colour, alpha = _orient(colour, orientation), _orient(alpha, orientation)
    else:
        im.load()  # full decode: a truncated file raises here; also reads trailing chunks
        colour, alpha = _pillow_planes(im, name)
        pending = exif_orientation(im)  # what Pillow's pixels still need (it orients TIFF itself)
        colour, alpha = _orient(colour, pending), _orient(alpha, pending)
        if opencv_16bit:
            colour, alpha = _decode_16bit_colour(im, name, orientation, colour)
    if colour.dtype in (np.uint8, np.uint16):
        bit_depth = 8 * colour.dtype.itemsize
        values = from_uint(colour)
    else:
        bit_depth = 16
        values = colour
    rgb = np.ascontiguousarray(
        np.repeat(values[..., None], 3, axis=2) if values.ndim == 2 else values
    )
    return ImageData(
        rgb=rgb,
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bit_depth=bit_depth,
        mode=mode,
        format=im.format,
        icc_profile=im.info.get("icc_profile") or None,
        exif=exif_of(im),
        info=extra_info(im, orientation),
    )


def _storage(im: Image.Image) -> tuple[int, str]:
    """Bits per sample the file declares, and the colour kind of what it stores.

    Pillow's mode hides 16-bit colour (a 16-bit RGB PNG opens as 'RGB', a 16-bit gray+alpha
    PNG as 'RGBA'); the raw mode of its first tile, the TIFF BitsPerSample tag or the PPM
    maximum value tell.
    """
    args = im.tile[0].args if im.tile else None
    rawmode = args[0] if isinstance(args, tuple) and args else args
    rawmode = rawmode if isinstance(rawmode, str) else ""
    mode = "LA" if rawmode.startswith("LA;16") else im.mode
    tags = getattr(im, "tag_v2", None)
    if tags is not None and 258 in tags:
        return max(tag_ints(tags, 258)), mode
    ppm_maxval = args[1] if im.format == "PPM" and isinstance(args, tuple) and len(args) > 1 else 0
    if (
        im.mode.startswith("I;16")
        or ";16" in rawmode
        or (isinstance(ppm_maxval, int) and ppm_maxval > 255)
    ):
        return 16, mode
    return (32 if im.mode in ("I", "F") else 8), mode


def _decode_16bit_colour(
    im: Image.Image, name: str, orientation: int, upright_8bit: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode 16-bit RGB / RGBA / gray+alpha pixels with OpenCV (Pillow keeps only 8 bits).

    OpenCV's TIFF decoder applies the TIFF's orientation itself (even with IMREAD_UNCHANGED);
    its other decoders return the pixels as stored, which get the EXIF orientation here. A
    PNG's tRNS colour becomes OpenCV's alpha channel. Associated (premultiplied) TIFF alpha is
    un-premultiplied, as Pillow does for 8 bits. Pillow's upright 8-bit decode must equal the
    high bytes of the result (a guard against a decoder reading the file differently: channel
    order, layout); disagreement raises ImageReadError.
    """
    decoded = opencv_decode(name, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16:
        raise ImageReadError(f"cannot decode {name}: OpenCV could not decode its 16-bit pixels")
    if im.format != "TIFF":
        decoded = _orient(decoded, orientation)
    colour, alpha = _opencv_planes(decoded, gray=upright_8bit.ndim == 2)
    if colour is None or colour.shape != upright_8bit.shape:
        raise ImageReadError(
            f"cannot decode {name}: OpenCV decodes it as {decoded.shape}, Pillow as"
            f" {upright_8bit.shape}"
        )
    reference = (colour >> 8).astype(np.int16)
    if alpha is not None and im.format == "TIFF" and associated_alpha(im.tag_v2):
        colour = _unpremultiply(colour, alpha)
        opaque = alpha >= 0x8000  # where Pillow's 8-bit un-premultiplying is precise
        reference = (colour >> 8).astype(np.int16)[opaque]
        upright_8bit = upright_8bit[opaque]
    if reference.size and np.abs(reference - upright_8bit).mean() > 1.0:
        raise ImageReadError(
            f"cannot decode {name}: OpenCV's 16-bit decode does not match Pillow's 8-bit one"
        )
    return colour, alpha


def _unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour stored multiplied by alpha (TIFF associated alpha) as plain colour."""
    scaled = colour.astype(np.float64) * 65535.0 / np.maximum(alpha, 1)[..., None]
    return np.where(alpha[..., None] > 0, np.minimum(np.rint(scaled), 65535), 0).astype(np.uint16)


def _opencv_planes(decoded: np.ndarray, gray: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Colour (RGB order, or gray) and alpha planes of an OpenCV decode; (None, None) if its
    channels do not fit."""
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    alpha = decoded[..., channels - 1] if channels in (2, 4) else None
    if gray:  # OpenCV may expand gray+alpha to BGRA
        return (decoded if channels == 1 else decoded[..., 0]), alpha
    if channels in (3, 4):
        return decoded[..., 2::-1], alpha
    return None, None


def _read_planar_tiff16(im: Image.Image, fp: BinaryIO, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Colour and alpha of a 16-bit TIFF stored plane by plane, in strips, uncompressed or
    Deflate-compressed (horizontal predictor or none), as stored (not yet oriented)."""
    tags = im.tag_v2
    width, height, samples = int(tags[256]), int(tags[257]), int(tags.get(277, 1))
    compression, predictor = tags.get(259, 1), tags.get(317, 1)
    offsets, counts = strips(im)
    if (
        compression not in (1, *DEFLATE)
        or predictor not in (1, 2)
        or samples not in (3, 4)
        or 273 not in tags
    ):
        raise ImageReadError(
            f"cannot read {name}: 16-bit TIFF with separate colour planes is read only"
            " uncompressed or Deflate-compressed, in strips; save it with interleaved samples"
        )
    rows = rows_per_strip(tags, height)
    per_plane = -(-height // rows)  # the strip table fits this: check_intact saw to it
    fp.seek(0)
    dtype = np.dtype(np.uint16).newbyteorder(byte_order(fp.read(2)))
    planes = np.empty((samples, height, width), np.uint16)
    for index, (offset, count) in enumerate(zip(offsets, counts, strict=True)):
        fp.seek(offset)
        data = fp.read(count)
        if compression != 1:
            data = zlib.decompress(data)
        plane, top = divmod(index, per_plane)
        top *= rows
        strip_rows = min(rows, height - top)
        strip = np.frombuffer(data, dtype, count=strip_rows * width).reshape(strip_rows, width)
        if predictor == 2:
            strip = np.cumsum(strip, axis=1, dtype=np.uint16)  # wraps like the differencing
        planes[plane, top : top + strip_rows] = strip
    pixels = planes.transpose(1, 2, 0)
    alpha = pixels[..., 3] if samples == 4 else None
    colour = pixels[..., :3]
    if alpha is not None and associated_alpha(tags):
        colour = _unpremultiply(colour, alpha)
    return colour, alpha


def _pillow_planes(im: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H×W gray or H×W×3) and alpha planes of a decoded Pillow image.

    Integer planes keep their dtype (uint8 / uint16); 'I' and 'F' become float32 in [0, 1] by
    the policy PIL images get (:func:`exposure_slot.pixel_values.pil_gray_values`).
    """
    mode = im.mode
    transparent = "transparency" in im.info
    if mode == "I" or mode == "F":
        return pil_gray_values(im, name), None
    if mode.startswith("I;16"):
        gray = np.asarray(im).astype(np.uint16)
        if not transparent:
            return gray, None
        # A 16-bit PNG's tRNS gray value: Pillow keeps it in info, not as alpha.
        opaque = gray != int(im.info["transparency"])
        return gray, opaque.astype(np.uint16) * np.uint16(65535)
    if mode in ("1", "L") and not transparent:
        return np.asarray(im.convert("L")), None
    if mode in ("LA", "La", "L"):
        planes = np.asarray(im.convert("LA"))
        return planes[..., 0], planes[..., 1]
    if mode in ("RGBA", "RGBa", "PA") or (transparent and mode in ("P", "RGB")):
        planes = np.asarray(im.convert("RGBA"))
        return planes[..., :3], planes[..., 3]
    try:
        return np.asarray(im if mode == "RGB" else im.convert("RGB")), None
    except ValueError as exc:
        raise ImageReadError(f"cannot convert colour mode {mode!r} to RGB") from exc


def _orient(plane: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """Apply an EXIF orientation (1-8) to an H×W or H×W×C array, as exif_transpose does."""
    if plane is None or orientation == 1:
        return plane
    if orientation in (5, 7):  # transpose / transverse: mirror across a diagonal
        plane = np.swapaxes(plane, 0, 1)
        return plane if orientation == 5 else plane[::-1, ::-1]
    return {
        2: lambda p: p[:, ::-1],
        3: lambda p: p[::-1, ::-1],
        4: lambda p: p[::-1],
        6: lambda p: np.rot90(p, -1),
        8: lambda p: np.rot90(p, 1),
    }[orientation](plane)
