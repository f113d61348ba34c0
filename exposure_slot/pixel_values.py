"""Pixel values and the colour facts that files and in-memory images share, without torch.

Files (:mod:`exposure_slot.files`) and in-memory images (:mod:`exposure_slot.pixels`) read and
write pixels by these rules only: the quantiser (:func:`to_uint`, :func:`from_uint`), the
float range (:data:`FLOAT_TOLERANCE`), the luma weights (:data:`LUMA`), the table of PIL modes
(:data:`PIL_MODES`) and the values of PIL's wide gray modes (:func:`pil_gray_values`). Importing
this module loads numpy and Pillow only, so reading and writing files never loads torch.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .errors import ImageTypeError, InvalidImageError, OptionError

FLOAT_TOLERANCE: float = 0.25
"""How far outside [0, 1] float pixels may lie and still be accepted (they are then clipped)."""

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""Rec.601 luma weights of R, G, B, as Pillow's ``convert("L")``: how a corrected colour
image becomes gray again for a gray input or file."""

PIL_MODES: dict[str, str] = {
    "RGB": "RGB", "RGBA": "RGBA", "L": "L", "LA": "LA",
    "1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA",
    "P": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBX": "RGB",
    "I": "I", "F": "F", "I;16": "I;16", "I;16L": "I;16", "I;16B": "I;16", "I;16N": "I;16",
}  # fmt: skip
"""Every PIL mode, and the mode its corrected image comes back in ('P' with transparency
comes back as 'RGBA': a palette cannot hold the correction)."""

WIDE_GRAY_MODES = frozenset(mode for mode, back in PIL_MODES.items() if back in ("I", "F", "I;16"))
"""Gray modes of more than 8 bits: read by :func:`pil_gray_values`."""

GRAY_MODES = frozenset(mode for mode, back in PIL_MODES.items() if back in ("L", "LA"))
GRAY_MODES |= WIDE_GRAY_MODES
"""PIL modes without colour: their corrected image is gray again (:func:`luma`)."""


def luma(rgb: np.ndarray) -> np.ndarray:
    """Luma (:data:`LUMA`) of ``…×3`` values, shape ``…``."""
    return rgb @ LUMA


_BLOCK_ELEMENTS = 1 << 18
"""Samples per block in :func:`to_uint`."""


def to_uint(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Quantise floats in [0, 1] to uint8 / uint16: clip, scale by 2**bits - 1, round to nearest.

    Ties round to even (``numpy.rint``). NaN or infinite values raise InvalidImageError;
    a ``bit_depth`` other than 8 or 16 is an OptionError.
    """
    dtype = _uint_dtype(bit_depth)
    values = np.asarray(values)
    scale = np.float32(np.iinfo(dtype).max)
    out = np.empty(values.shape, dtype)
    blocks = (values, out) if values.ndim else (values[None], out[None])
    # A block of rows at a time: whole-image temporaries of a large photo are fresh memory,
    # slower to fault in than the arithmetic.
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


def check_float_range(lo: float, hi: float, what: str) -> None:
    """Refuse a float image whose minimum ``lo`` or maximum ``hi`` is NaN, infinite or further
    than :data:`FLOAT_TOLERANCE` outside [0, 1] (InvalidImageError naming ``what``).

    Minimum and maximum carry any NaN or infinity, so checking them checks every value.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidImageError(f"{what} contains NaN or infinite values")
    if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
        raise InvalidImageError(
            f"{what} has values from {lo:.4g} to {hi:.4g}: float images must lie in [0, 1] "
            f"(up to {FLOAT_TOLERANCE} outside it is clipped); scale them first, e.g. divide "
            "0-255 values by 255, or pass 8-bit data as uint8"
        )


_WIDE_GRAY_MAX = {"I;16": 65535, "I": 65535, "F": 1}
"""Full scale of PIL's wide gray modes (by :data:`PIL_MODES`' answer: 'I;16*' are 0-65535
like 'I'): one policy for PIL images and for files."""


def pil_gray_values(image: Image.Image, what: str) -> np.ndarray:
    """``H×W`` float32 in [0, 1] of a decoded PIL image in mode 'I;16*', 'I' or 'F'.

    'I;16*' and 'I' are divided by 65535; an 'I' value below 0 or above 65535 is refused
    (InvalidImageError), since what its full scale is cannot be told. 'F' follows the float
    rule (:func:`check_float_range`). ``what`` names the image in error messages.
    """
    mode = image.mode
    full_scale = _WIDE_GRAY_MAX.get(PIL_MODES.get(mode, ""))
    if full_scale is None:
        raise ImageTypeError(f"{what}: mode {mode!r} is not a wide gray mode")
    values = np.asarray(image)
    if mode == "F":
        gray = values.astype(np.float32, copy=False)
        check_float_range(float(gray.min()), float(gray.max()), f"{what} (mode F)")
        return np.clip(gray, 0.0, 1.0)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > full_scale:
        raise InvalidImageError(
            f"{what} (mode {mode}) has values from {lo} to {hi}: 32-bit integer images are read "
            f"as 0-{full_scale} (16-bit data); scale them into that range, or to a float image "
            "in [0, 1] (mode F)"
        )
    return np.divide(values, np.float32(full_scale), dtype=np.float32)
