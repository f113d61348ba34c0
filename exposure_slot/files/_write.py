"""write_image: corrected pixels to a file, in a mode that matches the file they came from.

* Grayscale in ('1', 'L', 'LA', 'I;16', 'I', 'F') -> grayscale out: the RGB result is turned
  into luma (:data:`exposure_slot.pixel_values.LUMA`) of the stored (gamma-encoded) values, as
  Pillow's ``convert("L")`` does; a gray image that went through
  unchanged comes back identical. Formats without grayscale (WebP) get that luma in all three
  channels. Bilevel ('1') comes back as 8-bit grayscale, 'I' and 'F' as 16-bit grayscale
  where the format allows.
* Palette ('P') in -> RGB out (RGBA when the palette had transparency): the corrected colours
  do not fit the original palette.
* An ICC profile is written only where its colour space matches the written pixels (RGB
  profile on RGB, GRAY profile on grayscale), so a CMYK profile is dropped.
* Alpha is carried bit-exact (same dtype) to PNG, TIFF and WebP (8-bit there), rescaled when
  the output bit depth differs, and dropped for JPEG and BMP (no compositing).
* 16 bits per sample are kept for PNG and TIFF output and reduced to 8 elsewhere.
* ``quality`` (default 95) applies to JPEG and WebP.

The pixels are prepared here and encoded by :mod:`._encoders`, into a temporary file that
:mod:`._atomic` renames over the target.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from exposure_slot.errors import (
    ExposureSlotError,
    ImageTypeError,
    ImageWriteError,
    InvalidImageError,
    OptionError,
)
from exposure_slot.pixel_values import GRAY_MODES, from_uint, luma, to_uint

from ._atomic import atomic_write
from ._decode import ImageData
from ._encoders import Encoded, encode, fit_jpeg_segments
from ._formats import FORMATS, JPEG_FORMAT, TIFF_FORMAT, WRITABLE_EXTENSIONS, Format
from ._metadata import normalise_exif, normalise_xmp
from ._paths import path_name, reason_of

DEFAULT_QUALITY: int = 95
"""JPEG / WebP quality used when ``write_image`` gets ``quality=None``."""


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
    target = Path(path_name(path, ImageWriteError))
    spec = FORMATS.get(target.suffix.lower())
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
    if spec is JPEG_FORMAT:
        encoded = fit_jpeg_segments(encoded, target)
    if target.is_dir():
        raise ImageWriteError(f"cannot write {target}: it is a directory")
    try:
        atomic_write(target, lambda f: encode(f, encoded, spec, quality))
    except ExposureSlotError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"cannot write {target}: {reason_of(exc)}") from exc
    except Exception as exc:
        raise ImageWriteError(
            f"cannot encode {target} as {spec.pillow_name}: {reason_of(exc)}"
        ) from exc


def _prepare(rgb: object, like: ImageData | None, spec: Format) -> Encoded:
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
    if like is not None and like.mode in GRAY_MODES:
        planes = to_uint(luma(rgb), bits)[..., None]
        # Pillow cannot open 16-bit gray+alpha TIFF (nor write it): use RGBA with equal colours.
        lone_gray = spec.gray and not (spec is TIFF_FORMAT and bits == 16 and alpha is not None)
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
    return Encoded(
        pixels=np.ascontiguousarray(planes),
        icc_profile=icc if keep and icc and icc[16:20] == colour_space.encode() else None,
        exif=normalise_exif(like.exif) if keep and like is not None and like.exif else None,
        xmp=normalise_xmp(xmp) if keep and xmp else None,
        dpi=info.get("dpi"),
        comment=info.get("comment") if spec is JPEG_FORMAT else None,
        app13=list(info.get("app13", ())) if spec is JPEG_FORMAT else [],
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
