"""Reading and writing image files for exposure correction.

The network consumes float32 RGB in [0, 1]; photographers hand us JPEG, PNG, TIFF, WebP,
BMP and anything else Pillow reads, in any of Pillow's modes, at 8 or 16 bits. This module
turns such a file into an :class:`ImageData` (the colour to correct plus everything needed to
write the result back the way it came: alpha, bit depth, colour kind, ICC profile, EXIF, XMP,
dpi) and writes a corrected image atomically, in a mode that matches the original.

Conversion choices (documented for the README):

* Orientation: the EXIF Orientation tag (all 8 values, ``PIL.ImageOps.exif_transpose``
  semantics) is applied to the pixels and the alpha on read; the EXIF and XMP written back
  say Orientation = 1.
* EXIF is kept byte for byte except two in-place edits: Orientation is set to 1 and the link
  to the embedded thumbnail (IFD1) is cleared, because that thumbnail shows the uncorrected,
  un-rotated picture. ``ImageData.exif`` is always ``b"Exif\\0\\0"`` + a TIFF structure (the
  JPEG APP1 convention). TIFF files have no EXIF block: their descriptive tags (Make, Model,
  DateTime, the Exif and GPS sub-directories...) are gathered into one, and merged back into
  the TIFF directory on write.
* Quantisation: float → integer is ``rint(clip(x, 0, 1) * (2**bits - 1))``, round to nearest
  with ties to even; integer → float divides by ``2**bits - 1``. An 8-bit or 16-bit image
  read and written unchanged is therefore bit-identical.
* Grayscale ('1', 'L', 'LA', 'I;16', 'I', 'F') in → grayscale out. The RGB result is turned
  into luma with the Rec.601 weights 0.299, 0.587, 0.114 applied to the stored (gamma-encoded)
  values, as Pillow's ``convert("L")`` does; a gray image that went through unchanged comes back
  identical. Formats without grayscale (WebP) get that luma in all three channels.
* Palette ('P') in → RGB out (RGBA when the palette had transparency): the corrected colours
  do not fit the original palette. Bilevel ('1') in → 8-bit grayscale out.
* CMYK in → RGB: Pillow's conversion (it undoes the inverted Adobe CMYK JPEG convention), not
  colour-managed. An ICC profile is written only where its colour space matches the written
  pixels (RGB profile on RGB, GRAY profile on grayscale), so a CMYK profile is dropped.
* 'I' (32-bit integer) and 'F' (float) follow the rule PIL images get
  (:func:`exposure_slot.images.pil_gray_values`), so a file gives the same pixels through
  ``read_image`` and through ``Image.open``: 'I' is 0-65535 (values outside are refused), 'F'
  must lie in [0, 1] (NaN and 0-255 floats are refused). Both are written back as 16-bit
  grayscale where the format allows.
* Alpha is carried bit-exact (same dtype) to PNG, TIFF and WebP (8-bit there), rescaled when
  the output bit depth differs, and dropped for JPEG and BMP (no compositing). A PNG's tRNS
  colour becomes alpha (0 where the colour matches, else opaque), at 16 bits too. TIFF
  associated (premultiplied) alpha is un-premultiplied on read; it is written as unassociated.
* 16 bits per sample are kept for PNG and TIFF output and reduced to 8 elsewhere. Pillow
  decodes 16-bit RGB, RGBA and gray+alpha to 8 bits, so those pixels are decoded with OpenCV
  (metadata still comes from Pillow), and planar 16-bit TIFF, which both decode wrongly, by
  our own strip reader; PNG and TIFF are written at 16 bits by our own encoders
  (TIFF output always goes through ours: Deflate with horizontal predictor). 16-bit gray+alpha
  is written to TIFF as RGBA with equal colour channels, since Pillow cannot open 16-bit
  gray+alpha TIFF.
* One picture per file: a TIFF's reduced-resolution pages (thumbnails, previews) and masks
  are skipped, whichever page the full-resolution one is; a JPEG's extra pictures (MPO) are
  ignored; animations and multi-page files raise ImageReadError rather than lose frames.
* ``quality`` (default 95) applies to JPEG and WebP; JPEG at quality >= 90 uses 4:4:4 chroma.
* Also carried: dpi (JPEG, PNG, TIFF, BMP), XMP (JPEG, PNG, TIFF, WebP; Orientation reset),
  JPEG comment and JPEG APP13 (IPTC / Photoshop) segments between JPEG files. Not carried:
  PNG text chunks other than XMP, other JPEG APPn segments, the EXIF thumbnail, animation.
* Damage is an error (ImageReadError naming the file), never a picture: every image is fully
  decoded (a truncated file raises, as long as Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES``
  keeps its default, False; we never change it), and before that, damage the decoders would
  paper over is looked for (:func:`_check_intact`): libjpeg's warnings about the scan data,
  PNG CRCs and data size, TIFF strip layout, Deflate checksums, a damaged TIFF directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import socket
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from PIL import Image, PngImagePlugin, TiffImagePlugin, TiffTags, UnidentifiedImageError

from exposure_slot.errors import (
    ExposureSlotError,
    ImageReadError,
    ImageTooLargeError,
    ImageTypeError,
    ImageWriteError,
    InvalidImageError,
    OptionError,
)
from exposure_slot.pixels import pil_gray_values

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "READABLE_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "ImageData",
    "atomic_write_bytes",
    "from_uint",
    "is_our_output",
    "read_image",
    "remove_stale_temp_files",
    "to_uint",
    "write_image",
]

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Largest width × height :func:`read_image` decodes unless told otherwise (bomb guard)."""

_UNDECODABLE_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "MPEG", "EPS", "WMF", "IPTC"})
"""Pillow formats that it identifies but cannot decode here (stubs, or an external program)."""


def _readable_extensions() -> frozenset[str]:
    Image.init()
    return frozenset(
        ext
        for ext, name in Image.registered_extensions().items()
        if name in Image.OPEN and name not in _UNDECODABLE_FORMATS
    )


READABLE_EXTENSIONS: frozenset[str] = _readable_extensions()
"""Extensions (lower case) of the files :func:`read_image` decodes with this Pillow build:
the files a folder of inputs is searched for (AVIF and JPEG 2000 where Pillow has them)."""

DEFAULT_QUALITY: int = 95
"""JPEG / WebP quality used when ``write_image`` gets ``quality=None``."""

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATION_TAG = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_PNG_KEY = "XML:com.adobe.xmp"
_XMP_ORIENTATION = re.compile(rb"(tiff:Orientation\s*(?:=\s*[\"']|>)\s*)[0-9]")
# TIFF tags that describe pixel storage rather than the picture: never copied between files.
_TIFF_STORAGE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282, 283}
    | {284, 296, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514}
    | {530, 531, 532, 700, 34675, _ORIENTATION_TAG}
)
_PILLOW_LIMIT_LOCK = threading.Lock()


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


_BLOCK_ELEMENTS = 1 << 18
"""Samples per block in :func:`to_uint`."""


def to_uint(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Quantise floats in [0, 1] to uint8 / uint16: clip, scale by 2**bits - 1, round to nearest.

    Ties round to even (``numpy.rint``). NaN or infinite values raise InvalidImageError.
    """
    dtype = _uint_dtype(bit_depth)
    values = np.asarray(values)
    scale = np.float32(np.iinfo(dtype).max)
    out = np.empty(values.shape, dtype)
    blocks = (values, out) if values.ndim else (values[None], out[None])
    # A block of rows at a time: whole-image temporaries of a 24 MP photo are hundreds of
    # megabytes of fresh memory each, several times slower than the arithmetic.
    rows = max(1, _BLOCK_ELEMENTS // max(1, blocks[0][:1].size))
    for top in range(0, len(blocks[0]), rows):
        block = blocks[0][top : top + rows]
        if not np.isfinite(block).all():
            raise InvalidImageError("image values contain NaN or infinity; cannot quantise them")
        blocks[1][top : top + rows] = np.rint(np.clip(block, 0.0, 1.0) * scale)
    return out


def from_uint(values: np.ndarray) -> np.ndarray:
    """Convert uint8 / uint16 samples to float32 in [0, 1] (divide by 255 or 65535)."""
    values = np.asarray(values)
    if values.dtype not in (np.uint8, np.uint16):
        raise ImageTypeError(f"expected uint8 or uint16 samples, got dtype {values.dtype}")
    out = values.astype(np.float32)
    out /= np.float32(np.iinfo(values.dtype).max)
    return out


def _uint_dtype(bit_depth: int) -> type[np.unsignedinteger]:
    if bit_depth == 8:
        return np.uint8
    if bit_depth == 16:
        return np.uint16
    raise OptionError(f"bit_depth must be 8 or 16, got {bit_depth!r}")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ImageData:
    """Read an image file into an :class:`ImageData` (float32 RGB in [0, 1], upright).

    The pixel count is checked from the header, before anything is decoded: more than
    ``max_pixels`` raises ImageTooLargeError (``max_pixels=None`` disables the guard, which then
    also replaces Pillow's own decompression-bomb limit). Every failure to read is an
    ImageReadError naming the file and the reason.
    """
    name = _path_name(path, ImageReadError)
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise OptionError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    _check_readable(name)
    try:
        return _read(name, max_pixels, lift_pillow_limit=False)
    except Image.DecompressionBombError:
        # Pillow's own limit (2 × Image.MAX_IMAGE_PIXELS) fired before we saw the header; ours
        # decides, so look again with Pillow's lifted.
        return _read(name, max_pixels, lift_pillow_limit=True)


def _path_name(path: object, error: type[ExposureSlotError]) -> str:
    try:
        name = os.fspath(path)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ImageTypeError(
            f"image path must be a str or os.PathLike, got {type(path).__name__}"
        ) from exc
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name:
        raise error("image path is empty")
    return name


def _check_readable(name: str) -> None:
    try:
        size = os.stat(name).st_size
    except FileNotFoundError as exc:
        raise ImageReadError(f"no such file: {name}") from exc
    except OSError as exc:
        raise ImageReadError(f"cannot read {name}: {_reason(exc)}") from exc
    if os.path.isdir(name):
        raise ImageReadError(f"cannot read {name}: it is a directory, not an image file")
    if size == 0:
        raise ImageReadError(f"cannot read {name}: the file is empty (0 bytes)")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _pillow_bomb_guard(lifted: bool) -> Iterator[None]:
    """Silence Pillow's bomb warning (our limit rules) and, if asked, lift its error limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if not lifted:
            yield
            return
        # Image.MAX_IMAGE_PIXELS is process-wide: change it under a lock and restore it. This
        # happens only for images above Pillow's limit that ours allows; meanwhile, Pillow calls
        # from other threads run without Pillow's guard.
        with _PILLOW_LIMIT_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _read(name: str, max_pixels: int | None, *, lift_pillow_limit: bool) -> ImageData:
    with _pillow_bomb_guard(lift_pillow_limit):
        try:
            fp = open(name, "rb")  # noqa: SIM115 (closed by the with statement below)
        except OSError as exc:
            raise ImageReadError(f"cannot read {name}: {_reason(exc)}") from exc
        # Pillow gets a file object, not the path, so that it never memory-maps the pixels:
        # its mmap path ignores the size swap of a TIFF turned by 90° and garbles the image.
        with fp, _pillow_warnings() as caught, _identify(fp, name) as im:
            try:
                _select_picture(im, name)
                _refuse_damaged_tiff_directory(im, caught, name)
            except (Image.DecompressionBombError, ExposureSlotError):
                raise
            except Exception as exc:
                raise ImageReadError(
                    f"cannot read {name}: {_reason(exc)} (is the file truncated or corrupt?)"
                ) from exc
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{name} is {width}×{height} = {width * height:,} pixels, more than the limit"
                    f" of {max_pixels:,} (a guard against decompression bombs); pass a larger"
                    " max_pixels, or max_pixels=None, to read it anyway"
                )
            try:
                return _decode(im, fp, name)
            except (Image.DecompressionBombError, ExposureSlotError):
                raise
            except Exception as exc:
                raise ImageReadError(
                    f"cannot decode {name}: {_reason(exc)} (is the file truncated or corrupt?)"
                ) from exc


@contextlib.contextmanager
def _pillow_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings Pillow gives while reading (some mean damage), then pass on the rest
    (Pillow's bomb warning excepted: our limit rules)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    for warning in caught:
        if not issubclass(warning.category, Image.DecompressionBombWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _refuse_damaged_tiff_directory(
    im: Image.Image, caught: list[warnings.WarningMessage], name: str
) -> None:
    """Pillow reads past a damaged TIFF directory (a tag whose data lies outside the file, a
    short read) with only a warning; libtiff refuses such a file, and so do we."""
    if im.format != "TIFF":
        return
    for warning in caught:
        if Path(warning.filename).name == "TiffImagePlugin.py":
            raise ImageReadError(
                f"cannot read {name}: its TIFF directory is damaged ({warning.message})"
            )


def _identify(fp: BinaryIO, name: str) -> Image.Image:
    """Open an image header with Pillow (reads no pixels)."""
    try:
        return Image.open(fp)
    except Image.DecompressionBombError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"cannot read {name}: not an image file, or a format Pillow cannot identify"
        ) from exc
    except Exception as exc:
        raise ImageReadError(f"cannot read {name}: {_reason(exc)}") from exc


_PICTURE_PAGE_FLAGS = 0b101
"""TIFF NewSubfileType bits of a page that is not a picture of its own: 1 = reduced-resolution
copy (a thumbnail or preview), 4 = transparency mask."""


def _select_picture(im: Image.Image, name: str) -> None:
    """Seek ``im`` to the one picture the file holds; refuse animations and multi-page files.

    A TIFF's reduced-resolution pages and masks are skipped (the full-resolution page is read,
    whichever page it is). A JPEG with extra pictures (MPO: previews, depth maps, a stereo
    pair's second eye) is read as its primary picture. Any other file with more than one frame
    raises ImageReadError: correcting one frame and writing a still picture would quietly drop
    the rest.
    """
    frames = getattr(im, "n_frames", 1)
    if frames == 1 or im.format == "MPO":
        return
    pages = list(range(frames))
    if im.format == "TIFF":
        pictures = []
        for page in pages:
            im.seek(page)
            if not int(im.tag_v2.get(254, 0)) & _PICTURE_PAGE_FLAGS:
                pictures.append(page)
        if len(pictures) <= 1:
            # No full-resolution page at all: the largest of the reduced ones.
            candidates = pictures or pages
            sizes = {}
            for page in candidates:
                im.seek(page)
                sizes[page] = im.width * im.height
            im.seek(max(candidates, key=sizes.__getitem__))
            return
        frames = len(pictures)
    kind = "pages" if im.format in ("TIFF", "PDF") else "frames"
    raise ImageReadError(
        f"cannot read {name}: it holds {frames} {kind} (an animation or a multi-page file);"
        " exposure-slot corrects single pictures: save the one you want as a file of its own"
    )


def _decode(im: Image.Image, fp: BinaryIO, name: str) -> ImageData:
    """Check the file for damage, decode it fully and gather its metadata."""
    bits, mode = _storage(im)  # before load(), which clears the tile list it reads
    orientation = _orientation(im)  # the file's; Pillow >= 10 drops a TIFF's tag while loading
    opencv_16bit = bits == 16 and mode in ("RGB", "RGBA", "LA")
    _check_intact(im, fp, name)
    if opencv_16bit and im.format == "TIFF" and im.tag_v2.get(284, 1) == 2:
        # Planar 16-bit TIFF: OpenCV and Pillow both decode it wrongly.
        colour, alpha = _read_planar_tiff16(im, fp, name)
        colour, alpha = _orient(colour, orientation), _orient(alpha, orientation)
    else:
        im.load()  # full decode: a truncated file raises here; also reads trailing chunks
        colour, alpha = _pillow_planes(im, name)
        pending = _orientation(im)  # what Pillow's pixels still need (it orients TIFF itself)
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
        exif=_exif_of(im),
        info=_extra_info(im, orientation),
    )


def _check_intact(im: Image.Image, fp: BinaryIO, name: str) -> None:
    """Raise ImageReadError if the decoders would quietly fill in damaged data.

    Pillow raises for a file that ends early, but not for damage its decoders skip over:
    libjpeg fills a JPEG's missing or corrupt scan data with grey and only warns, Pillow does
    not check the CRC of PNG pixel chunks, and libtiff stops inflating a Deflate strip before
    its checksum. So the JPEG's scan data is decoded by libjpeg (through OpenCV, at 1/8 scale:
    the whole bitstream, few pixels) with its warnings taken as errors, every PNG chunk's CRC
    is checked, and every Deflate TIFF strip is inflated up to its checksum.
    """
    position = fp.tell()
    try:
        if im.format in ("JPEG", "MPO"):
            _check_jpeg(im, name)
        elif im.format == "PNG":
            _check_png(fp, name)
        elif im.format == "TIFF":
            _check_tiff(im, fp, name)
    finally:
        fp.seek(position)


_TIFF_DEFLATE = (8, 32946)
_OPENCV_MAX_PIXELS = 1 << 30
"""OpenCV's default limit on decoded pixels (OPENCV_IO_MAX_IMAGE_PIXELS)."""
# libjpeg's warnings about the scan data (jerror.h JWRN_*): each means pixels were made up.
_LIBJPEG_DAMAGE = re.compile(
    r"^(Corrupt JPEG data.*|Premature end of JPEG file|Invalid SOS parameters.*"
    r"|Inconsistent progression sequence.*)$\n?",
    re.MULTILINE,
)
# OpenCV's own log lines (and their continuation lines) about a decode that failed.
_OPENCV_LOG = re.compile(r"^(\[\s*(ERROR|WARN|INFO).*|>.*)$\n?", re.MULTILINE)
_STDERR_LOCK = threading.Lock()


def _check_jpeg(im: Image.Image, name: str) -> None:
    if im.width * im.height > _OPENCV_MAX_PIXELS:
        return  # more than OpenCV decodes: Pillow's own checks only
    reduced, report = _opencv_decode_reporting(
        name, cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_IGNORE_ORIENTATION
    )
    damage = _LIBJPEG_DAMAGE.search(report)
    if damage:
        reason = damage.group(0).strip()
        raise ImageReadError(f"cannot decode {name}: {reason} (the file is damaged)")
    if reduced is None:
        raise ImageReadError(f"cannot decode {name}: libjpeg cannot decode it (is it corrupt?)")


def _opencv_decode(name: str, flags: int) -> np.ndarray | None:
    """``cv2.imdecode`` of a file, None where OpenCV cannot decode it."""
    return _opencv_decode_reporting(name, flags)[0]


def _opencv_decode_reporting(name: str, flags: int) -> tuple[np.ndarray | None, str]:
    """``cv2.imdecode`` of a file, and what its C libraries wrote to stderr meanwhile.

    libjpeg reports damage only as a warning that C code prints to file descriptor 2, so that
    descriptor points at a temporary file during the decode (one decode at a time). Anything
    else written there meanwhile, other than OpenCV's own log, is passed on to stderr.
    """
    data = np.fromfile(name, dtype=np.uint8)
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved: int | None = os.dup(2)
        except OSError:  # no descriptor 2 (a daemon): leave it closed afterwards
            saved = None
        os.dup2(capture.fileno(), 2)
        try:
            decoded = cv2.imdecode(data, flags)
        except cv2.error:
            decoded = None
        finally:
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
        capture.seek(0)
        report = capture.read().decode("utf-8", "replace")
    others = _OPENCV_LOG.sub("", _LIBJPEG_DAMAGE.sub("", report))
    if others and sys.stderr is not None:
        sys.stderr.write(others)
        sys.stderr.flush()
    return (decoded if decoded is not None and decoded.size else None), report


_READ_BLOCK = 1 << 20
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2))
_ADAM7 += ((1, 0, 2, 1),)


def _check_png(fp: BinaryIO, name: str) -> None:
    """Every chunk up to IEND must be complete and match its CRC, the header must be valid,
    and the pixel data must inflate, up to its checksum, to exactly the size it declares."""
    fp.seek(len(_PNG_SIGNATURE))
    inflater, inflated, expected = zlib.decompressobj(), 0, None
    inflate_error: ImageReadError | None = None  # raised after the chunk's CRC check
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise ImageReadError(f"cannot read {name}: the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        crc, left, first = zlib.crc32(kind), length, b""
        while left:
            block = fp.read(min(left, _READ_BLOCK))
            if not block:
                raise ImageReadError(f"cannot read {name}: the PNG ends inside a chunk")
            crc, left, first = zlib.crc32(block, crc), left - len(block), first or block
            if kind == b"IDAT" and inflate_error is None:
                try:
                    inflated += _inflated_size(inflater, block, name)
                except ImageReadError as exc:
                    inflate_error = exc
        stored = fp.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc:
            shown = kind.decode("latin-1")
            raise ImageReadError(
                f"cannot read {name}: its {shown!r} chunk fails its CRC check (the file is damaged)"
            )
        if inflate_error is not None:
            raise inflate_error
        if kind == b"IHDR" and expected is None:
            expected = _png_data_size(first, name)
        if kind == b"IEND":
            break
    if not inflater.eof or inflated != expected:
        raise ImageReadError(
            f"cannot read {name}: its pixel data does not match the size in its header (the"
            " file is damaged)"
        )


def _png_data_size(header: bytes, name: str) -> int:
    """Bytes of filtered scanlines a PNG header declares; ImageReadError if it is invalid."""
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", header.ljust(13, b"\xff")
    )
    if (
        len(header) != 13
        or not (0 < width < 2**31 and 0 < height < 2**31)
        or depth not in _PNG_DEPTHS.get(colour, ())
        or (compression, filtering) != (0, 0)
        or interlace not in (0, 1)
    ):
        raise ImageReadError(f"cannot read {name}: its PNG header (IHDR) is invalid")
    bits = depth * _PNG_CHANNELS[colour]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for top, left, row_step, column_step in passes:
        rows = max(0, -(-(height - top) // row_step))
        columns = max(0, -(-(width - left) // column_step))
        if rows and columns:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


def _inflated_size(inflater: zlib._Decompress, data: bytes, name: str) -> int:
    """Feed ``data`` to ``inflater``; the number of bytes it gave (the bytes are dropped)."""
    size = 0
    try:
        while data and not inflater.eof:
            size += len(inflater.decompress(data, _READ_BLOCK))
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise ImageReadError(
            f"cannot decode {name}: its compressed data is corrupt ({exc})"
        ) from exc
    return size


def _tiff_strips(im: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Offsets and byte counts of the current TIFF page's strips (or tiles)."""
    tags = im.tag_v2
    keys = (273, 279) if 273 in tags else (324, 325)
    columns = []
    for key in keys:
        value = tags.get(key, ())
        columns.append(tuple(int(v) for v in (value if isinstance(value, tuple) else (value,))))
    return columns[0], columns[1]


# Tags that lay out a TIFF's pixels: one integer each, or integers for the _TIFF_LIST_TAGS.
_TIFF_LIST_TAGS = frozenset({258, 273, 279, 324, 325, 338, 339})
_TIFF_LAYOUT_TAGS = _TIFF_LIST_TAGS | {254, 256, 257, 259, 262, 277, 278, 284, 317, 322, 323}
# (S)BYTE, (S)SHORT, (S)LONG, IFD, (S)LONG8, IFD8: what libtiff takes for an integer tag.
_TIFF_INTEGER_TYPES = frozenset({1, 6, 3, 8, 4, 9, 13, 16, 17, 18})


def _check_tiff_entries(fp: BinaryIO, offset: int | None, name: str) -> None:
    """Each tag at most once, and entries of integer tags holding integers (one, for the
    layout tags but the _TIFF_LIST_TAGS): Pillow skips or misreads such damaged entries. The
    integer tags are the baseline and extension ones (below 32768) TIFF types as integers."""
    fp.seek(0)
    header = fp.read(4)
    order = {b"II": "<", b"MM": ">"}.get(header[:2], "<")
    big = header[2:4] in (b"\x00\x2b", b"\x2b\x00")  # BigTIFF: 8-byte counts and offsets
    count_format, entry_format = ("Q", "HHQ") if big else ("H", "HHL")
    fp.seek(offset or 0)
    raw = fp.read(struct.calcsize(order + count_format))
    (entries,) = struct.unpack(order + count_format, raw)
    size = struct.calcsize(order + entry_format) + (8 if big else 4)
    table = fp.read(entries * size)
    seen: set[int] = set()
    for start in range(0, len(table) - size + 1, size):
        tag, kind, count = struct.unpack_from(order + entry_format, table, start)
        if tag in seen:  # which of the two values is meant cannot be told
            raise ImageReadError(f"cannot read {name}: its TIFF directory lists tag {tag} twice")
        seen.add(tag)
        integer = tag in _TIFF_LAYOUT_TAGS or (
            tag < 32768 and TiffTags.lookup(tag).type in _TIFF_INTEGER_TYPES
        )
        if (integer and kind not in _TIFF_INTEGER_TYPES) or (
            tag in _TIFF_LAYOUT_TAGS and tag not in _TIFF_LIST_TAGS and count != 1
        ):
            raise ImageReadError(f"cannot read {name}: its TIFF tag {tag} is malformed (damaged?)")


def _check_tiff(im: Image.Image, fp: BinaryIO, name: str) -> None:
    """The tags that lay out the pixels must be valid and agree (Pillow reads past some that
    libtiff refuses), every strip or tile must lie inside the file and, uncompressed, hold its
    rows; Deflate data is inflated up to its checksum (a flipped byte shows there)."""
    tags = im.tag_v2
    _check_tiff_entries(fp, tags.offset, name)
    bits = tags.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    width, height = int(tags.get(256, 0)), int(tags.get(257, 0))  # as stored, not turned
    planar, compression = tags.get(284, 1), tags.get(259, 1)
    planes = len(bits) if planar == 2 else 1
    offsets, counts = _tiff_strips(im)
    if 273 in tags:
        rows = max(1, min(int(tags.get(278, height)), height))
        blocks = -(-height // rows)
    else:
        rows = 0
        tile_width, tile_height = max(1, int(tags.get(322, 1))), max(1, int(tags.get(323, 1)))
        blocks = -(-width // tile_width) * -(-height // tile_height)
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    if (
        planar not in (1, 2)
        or len(bits) != tags.get(277, 1)
        or len(offsets) != blocks * planes
        or len(counts) != len(offsets)
        or any(offset + count > size for offset, count in zip(offsets, counts, strict=True))
    ):
        raise ImageReadError(f"cannot read {name}: its TIFF directory is invalid (damaged?)")
    if compression == 1 and rows:
        row_bytes = [(width * b + 7) // 8 for b in bits] if planes > 1 else []
        row_bytes = row_bytes or [(width * sum(bits) + 7) // 8]
        for index, count in enumerate(counts):
            plane, strip = divmod(index, blocks)
            if count < min(rows, height - strip * rows) * row_bytes[plane]:
                raise ImageReadError(f"cannot read {name}: a TIFF strip is cut short (damaged?)")
    if compression in _TIFF_DEFLATE:
        for offset, count in zip(offsets, counts, strict=True):
            fp.seek(offset)
            inflater = zlib.decompressobj()
            _inflated_size(inflater, fp.read(count), name)
            if not inflater.eof:
                raise ImageReadError(
                    f"cannot decode {name}: the Deflate data at byte {offset} is cut short"
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
        value = tags[258]
        return (max(value) if isinstance(value, tuple) else int(value)), mode
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
    decoded = _opencv_decode(name, cv2.IMREAD_UNCHANGED)
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
    if alpha is not None and im.format == "TIFF" and im.tag_v2.get(338) in (1, (1,)):
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
    offsets, counts = _tiff_strips(im)
    if (
        compression not in (1, 8, 32946)
        or predictor not in (1, 2)
        or samples not in (3, 4)
        or 273 not in tags
    ):
        raise ImageReadError(
            f"cannot read {name}: 16-bit TIFF with separate colour planes is read only"
            " uncompressed or Deflate-compressed, in strips; save it with interleaved samples"
        )
    rows = min(int(tags.get(278, height)), height)
    per_plane = -(-height // rows)
    if len(offsets) != per_plane * samples or len(counts) != len(offsets):
        raise ImageReadError(f"cannot read {name}: its strip table does not fit its size")
    fp.seek(0)
    dtype = np.dtype(np.uint16).newbyteorder("<" if fp.read(2) == b"II" else ">")
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
    if alpha is not None and tags.get(338) in (1, (1,)):
        colour = _unpremultiply(colour, alpha)
    return colour, alpha


def _pillow_planes(im: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H×W gray or H×W×3) and alpha planes of a decoded Pillow image.

    Integer planes keep their dtype (uint8 / uint16); 'I' and 'F' become float32 in [0, 1] by
    the policy PIL images get (:func:`exposure_slot.images.pil_gray_values`).
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


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # unreadable EXIF: Pillow would not rotate either
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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


def _exif_of(im: Image.Image) -> bytes | None:
    """The file's EXIF as ``Exif\\0\\0`` + TIFF bytes, Orientation 1 and no thumbnail link."""
    raw = im.info.get("exif")
    if raw:
        return _normalise_exif(raw)
    if im.format != "TIFF":
        return None
    tags = _descriptive_exif_tags(im.getexif())
    if not tags:
        return None
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return _normalise_exif(exif.tobytes())


def _descriptive_exif_tags(exif: Image.Exif) -> dict[int, Any]:
    """IFD0 tags that describe the picture (not its storage), sub-directories as dicts."""
    tags: dict[int, Any] = {}
    for tag, value in exif.items():
        if tag in _TIFF_STORAGE_TAGS:
            continue
        if tag in (_EXIF_IFD, _GPS_IFD):
            value = dict(exif.get_ifd(tag))
            if _INTEROP_IFD in value:
                value[_INTEROP_IFD] = dict(exif.get_ifd(_INTEROP_IFD))
            if not value:
                continue
        tags[tag] = value
    return tags


def _normalise_exif(raw: bytes) -> bytes:
    """Add the ``Exif\\0\\0`` prefix, set Orientation to 1 and unlink IFD1, all in place.

    Everything else stays byte-identical (maker notes keep their offsets). A block we cannot
    walk is returned unchanged: Pillow could not have read an orientation from it either.
    """
    data = bytearray(raw if raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + raw)
    tiff = memoryview(data)[len(_EXIF_PREFIX) :]
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if order is None or len(tiff) < 8:
        return bytes(data)
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd0 + 2 > len(tiff):
        return bytes(data)
    (count,) = struct.unpack_from(order + "H", tiff, ifd0)
    next_link = ifd0 + 2 + 12 * count
    if next_link + 4 > len(tiff):
        return bytes(data)
    for entry in range(ifd0 + 2, next_link, 12):
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, entry)
        if tag == _ORIENTATION_TAG and n == 1 and kind in (3, 4):  # SHORT or LONG
            struct.pack_into(order + ("H" if kind == 3 else "I"), tiff, entry + 8, 1)
    struct.pack_into(order + "I", tiff, next_link, 0)
    tiff.release()
    return bytes(data)


def _normalise_xmp(xmp: bytes | str) -> bytes:
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return _XMP_ORIENTATION.sub(rb"\g<1>1", data)


def _extra_info(im: Image.Image, orientation: int) -> dict[str, Any]:
    info: dict[str, Any] = {"orientation": orientation}
    dpi = im.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        values = tuple(float(v) for v in dpi)
        if all(np.isfinite(v) and v > 0 for v in values):
            info["dpi"] = values
    xmp = im.info.get("xmp")
    if xmp:
        info["xmp"] = _normalise_xmp(xmp)
    comment = im.info.get("comment")
    if comment:
        info["comment"] = comment
    app13 = [data for marker, data in getattr(im, "applist", ()) if marker == "APP13"]
    if app13:
        info["app13"] = app13
    return info


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """What an output format can hold."""

    pillow_name: str
    gray: bool = True
    alpha: bool = True
    sixteen_bit: bool = False
    metadata: bool = True  # ICC profile, EXIF, XMP
    lossy: bool = False


_JPEG = _Format("JPEG", alpha=False, lossy=True)
_TIFF = _Format("TIFF", sixteen_bit=True)
_FORMATS: dict[str, _Format] = {
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".png": _Format("PNG", sixteen_bit=True),
    ".tif": _TIFF,
    ".tiff": _TIFF,
    ".webp": _Format("WEBP", gray=False, lossy=True),
    ".bmp": _Format("BMP", alpha=False, metadata=False),
}
WRITABLE_EXTENSIONS: tuple[str, ...] = tuple(sorted(_FORMATS))
"""File extensions :func:`write_image` accepts (case-insensitive)."""

_MARK = "exposure-slot"
"""Put in every file write_image writes, so that a later run knows which files it may replace:
PNG tEXt ``Software``, JPEG APP15 segment, TIFF ``Software`` tag, WebP chunk ``ESLT``, BMP
header reserved bytes (application-defined by the format)."""
_JPEG_MARK = _MARK.encode() + b"\x00"
_WEBP_MARK_CHUNK = b"ESLT"
_BMP_MARK = b"ExSl"
_JPEG_SEGMENT_MAX = 65533  # payload bytes of one JPEG marker segment
_JPEG_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class _Encoded:
    """Pixels ready for an encoder (H×W×C uint8/uint16, C = 1..4) plus the metadata to embed."""

    pixels: np.ndarray
    icc_profile: bytes | None
    exif: bytes | None
    xmp: bytes | None
    dpi: tuple[float, float] | None
    comment: bytes | None
    app13: list[bytes]


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    like: ImageData | None = None,
    *,
    quality: int | None = None,
) -> None:
    """Write ``rgb`` (H×W×3 float in [0, 1]; uint8/uint16 also accepted) to ``path`` atomically.

    The format comes from the extension (see WRITABLE_EXTENSIONS). With ``like`` (usually what
    read_image returned), the output matches it: grayscale stays grayscale, alpha is carried,
    16-bit stays 16-bit where the format allows, and the ICC profile, EXIF (Orientation 1),
    XMP and dpi are embedded where the format supports them. ``quality`` (1-100, default 95)
    is used by JPEG and WebP. The image is never resized. The file is first written to a
    hidden temporary file in the same folder, then renamed over ``path``: on any failure no
    partial output is left. Filesystem and encoder failures raise ImageWriteError.
    """
    target = Path(_path_name(path, ImageWriteError))
    spec = _FORMATS.get(target.suffix.lower())
    if spec is None:
        shown = f"extension {target.suffix!r}" if target.suffix else "no file extension"
        raise ImageWriteError(
            f"cannot write {target}: {shown}; use one of {', '.join(WRITABLE_EXTENSIONS)}"
        )
    if quality is None:
        quality = DEFAULT_QUALITY
    elif isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise OptionError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if like is not None and not isinstance(like, ImageData):
        raise ImageTypeError(f"like must be an ImageData or None, got {type(like).__name__}")
    encoded = _prepare(rgb, like, spec)
    if spec is _JPEG:
        encoded = _fit_jpeg_segments(encoded, target)
    if target.is_dir():
        raise ImageWriteError(f"cannot write {target}: it is a directory")
    try:
        _atomic_write(target, lambda f: _encode(f, encoded, spec, quality))
    except ExposureSlotError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"cannot write {target}: {_reason(exc)}") from exc
    except Exception as exc:
        raise ImageWriteError(
            f"cannot encode {target} as {spec.pillow_name}: {_reason(exc)}"
        ) from exc


def _prepare(rgb: object, like: ImageData | None, spec: _Format) -> _Encoded:
    """Validate ``rgb`` and turn it into the integer pixels and metadata the format takes."""
    if not isinstance(rgb, np.ndarray):
        raise ImageTypeError(f"rgb must be a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InvalidImageError(f"rgb must have shape (height, width, 3), got {rgb.shape}")
    if rgb.dtype in (np.uint8, np.uint16):
        source_bits = 8 * rgb.dtype.itemsize
        rgb = from_uint(rgb)
    elif np.issubdtype(rgb.dtype, np.floating):
        source_bits = 8
    else:
        raise ImageTypeError(f"rgb must be a float, uint8 or uint16 array, got dtype {rgb.dtype}")
    wanted_bits = like.bit_depth if like is not None else source_bits
    bits = 16 if wanted_bits == 16 and spec.sixteen_bit else 8
    alpha = like.alpha if like is not None and spec.alpha else None
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise InvalidImageError(
            f"like.alpha is {alpha.shape[1]}×{alpha.shape[0]} but rgb is"
            f" {rgb.shape[1]}×{rgb.shape[0]}; write_image never resizes"
        )
    if like is not None and like.mode in _GRAY_MODES:
        planes = to_uint(rgb @ _LUMA_WEIGHTS, bits)[..., None]
        # Pillow cannot open 16-bit gray+alpha TIFF (nor write it): use RGBA with equal colours.
        lone_gray = spec.gray and not (spec is _TIFF and bits == 16 and alpha is not None)
        planes = planes if lone_gray else np.repeat(planes, 3, axis=2)
    else:
        planes = to_uint(rgb, bits)
    if alpha is not None:
        planes = np.concatenate([planes, _alpha_at(alpha, bits)[..., None]], axis=2)
    colour_space = "GRAY" if planes.shape[2] <= 2 else "RGB "
    info = like.info if like is not None else {}
    icc = like.icc_profile if like is not None else None
    keep = spec.metadata
    xmp = info.get("xmp")
    return _Encoded(
        pixels=np.ascontiguousarray(planes),
        icc_profile=icc if keep and icc and icc[16:20] == colour_space.encode() else None,
        exif=_normalise_exif(like.exif) if keep and like is not None and like.exif else None,
        xmp=_normalise_xmp(xmp) if keep and xmp else None,
        dpi=info.get("dpi"),
        comment=info.get("comment") if spec is _JPEG else None,
        app13=list(info.get("app13", ())) if spec is _JPEG else [],
    )


def _alpha_at(alpha: np.ndarray, bits: int) -> np.ndarray:
    """Alpha as uint8/uint16 at ``bits``: unchanged when it already is, else rescaled."""
    alpha = np.asarray(alpha)
    if alpha.dtype in (np.uint8, np.uint16):
        if 8 * alpha.dtype.itemsize == bits:
            return alpha
        return to_uint(from_uint(alpha), bits)
    if np.issubdtype(alpha.dtype, np.floating):
        return to_uint(alpha, bits)
    raise ImageTypeError(f"alpha must be uint8, uint16 or float, got dtype {alpha.dtype}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file and a rename, as images are
    written: a reader never sees a partial file. OS errors propagate."""
    _atomic_write(Path(path), lambda f: f.write(data))


def _atomic_write(target: Path, encode: Callable[[BinaryIO], None]) -> None:
    """Encode into a hidden temporary file beside ``target``, then rename it over ``target``."""
    fd, temp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            encode(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(r"\.exposure-slot-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}\.tmp")
"""Our temporary files: host, writer pid, random part. Short and fixed-length, so that any
valid target name can be written (the name of the target is not part of it)."""


def _create_temp(target: Path) -> tuple[int, Path]:
    """Create ``.exposure-slot-<host>-<pid>-<random>.tmp`` beside ``target`` exclusively; the
    umask sets its permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        temp = target.with_name(f".exposure-slot-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except BaseException:
            # Ctrl-C can land just after the file was created, before the caller holds it:
            # O_EXCL makes a file of this random name ours, so remove it.
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    raise ImageWriteError(f"cannot write {target}: could not create a temporary file beside it")


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writers of this machine left in ``folder``.

    A temporary file is stale when its name says it was made on this host by a process that
    no longer exists (a writer killed with SIGKILL, or by a power cut, cannot clean up after
    itself). Files of live processes, and of other hosts sharing the folder, are left alone.
    Returns the removed paths; a folder that cannot be listed removes nothing.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or match[1] != _HOST or _process_exists(int(match[2])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` runs on this machine (always assumed on Windows, where os.kill kills)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, but belongs to another user
        pass
    return True


def _encode(f: BinaryIO, encoded: _Encoded, spec: _Format, quality: int) -> None:
    """Encode with our TIFF / 16-bit PNG writers where Pillow falls short, else with Pillow."""
    if spec is _TIFF:
        _write_tiff(f, encoded)
    elif spec.pillow_name == "PNG" and encoded.pixels.dtype == np.uint16:
        _write_png16(f, encoded)
    else:
        _save_with_pillow(f, encoded, spec, quality)


def _save_with_pillow(f: BinaryIO, encoded: _Encoded, spec: _Format, quality: int) -> None:
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
    if spec is _JPEG:
        if quality >= 90:
            params["subsampling"] = 0  # 4:4:4
        if encoded.comment:
            params["comment"] = encoded.comment
        segments = [(0xED, data) for data in encoded.app13] + [(0xEF, _JPEG_MARK)]
        params["extra"] = b"".join(_jpeg_segment(marker, data) for marker, data in segments)
    if spec.pillow_name == "PNG":
        pnginfo = PngImagePlugin.PngInfo()
        pnginfo.add_text("Software", _MARK)
        if encoded.xmp:
            pnginfo.add_itxt(_XMP_PNG_KEY, encoded.xmp.decode("utf-8", "replace"))
        params["pnginfo"] = pnginfo
    elif encoded.xmp:
        params["xmp"] = encoded.xmp
    if spec.pillow_name == "WEBP":
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", **params)
        f.write(_webp_with_mark(buffer.getvalue(), pixels.shape))
        return
    image.save(f, format=spec.pillow_name, **params)
    if spec.pillow_name == "BMP":
        f.seek(6)  # bfReserved1 and bfReserved2
        f.write(_BMP_MARK)
        f.seek(0, os.SEEK_END)


def _fit_jpeg_segments(encoded: _Encoded, target: Path) -> _Encoded:
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


def _webp_with_mark(data: bytes, shape: tuple[int, ...]) -> bytes:
    """Append our mark chunk to a WebP file, first turning a simple-format file (lone VP8/VP8L
    chunk, where no other chunk may follow) into the extended format (VP8X header)."""
    chunks = data[12:]
    if chunks[:4] != b"VP8X":
        height, width = shape[:2]
        flags = 0x10 if shape[2] == 4 else 0  # alpha
        canvas = struct.pack("<I", flags) + (width - 1).to_bytes(3, "little")
        canvas += (height - 1).to_bytes(3, "little")
        chunks = _riff_chunk(b"VP8X", canvas) + chunks
    chunks += _riff_chunk(_WEBP_MARK_CHUNK, _MARK.encode())
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)


def is_our_output(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` carries the mark :func:`write_image` puts in every file.

    Only headers are read. A file that cannot be read or parsed is not ours, so it is never
    replaced on the grounds that we wrote it.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:2] == b"BM":
                return head[6:10] == _BMP_MARK
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _riff_has_mark(f)
            f.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(f) as im:
                    if im.format == "JPEG":
                        return ("APP15", _JPEG_MARK) in im.applist
                    if im.format == "PNG":
                        return im.info.get("Software") == _MARK
                    if im.format == "TIFF":
                        return im.tag_v2.get(305) == _MARK
    except Exception:  # unreadable, not an image, a decoder's complaint: not ours
        return False
    return False


def _riff_has_mark(f: BinaryIO) -> bool:
    """Walk a RIFF file's chunk headers (from offset 12) looking for our mark chunk."""
    while header := f.read(8):
        if len(header) < 8:
            return False
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == _WEBP_MARK_CHUNK:
            return f.read(size) == _MARK.encode()
        f.seek(size + size % 2, os.SEEK_CUR)
    return False


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > 65533:
        raise ImageWriteError(f"a JPEG APP segment of {len(payload)} bytes is too long")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


# PNG ----------------------------------------------------------------------------------------

_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA
_BAND_BYTES = 1 << 22
_ZLIB_LEVEL = 3  # level 6 is 2.5× slower on 16-bit photos for 0.3 % smaller files


def _write_png16(f: BinaryIO, encoded: _Encoded) -> None:
    """Write a 16-bit PNG (Pillow cannot) with iCCP, pHYs, eXIf and XMP iTXt chunks."""
    pixels = encoded.pixels
    height, width, channels = pixels.shape
    f.write(_PNG_SIGNATURE)
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    _png_chunk(f, b"IHDR", header)
    if encoded.icc_profile:
        _png_chunk(f, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(encoded.icc_profile))
    if encoded.dpi:
        per_metre = [round(v / 0.0254) for v in encoded.dpi]
        _png_chunk(f, b"pHYs", struct.pack(">IIB", *per_metre, 1))
    if encoded.exif:
        _png_chunk(f, b"eXIf", encoded.exif[len(_EXIF_PREFIX) :])
    if encoded.xmp:
        _png_chunk(f, b"iTXt", _XMP_PNG_KEY.encode() + b"\x00\x00\x00\x00\x00" + encoded.xmp)
    _png_chunk(f, b"tEXt", b"Software\x00" + _MARK.encode())
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
    f.write(struct.pack(">I", len(data)) + kind + data)
    f.write(struct.pack(">I", zlib.crc32(kind + data)))


def _png_filter(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Paeth-filter PNG scanlines (type 4 on every row).

    On photographs it compresses within 0.5 % of libpng's per-row adaptive choice, at a
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


def _write_tiff(f: BinaryIO, encoded: _Encoded) -> None:
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
        for tag, value in _descriptive_exif_tags(exif).items():
            ifd[tag] = value
    rows_per_strip = max(1, _BAND_BYTES // (width * channels * pixels.dtype.itemsize))
    strips = [
        _tiff_strip(pixels[start : start + rows_per_strip])
        for start in range(0, height, rows_per_strip)
    ]
    ifd[256], ifd[257] = width, height
    ifd[305] = _MARK  # Software: replaces the camera's (the picture is now ours)
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
