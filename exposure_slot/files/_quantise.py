"""Integer samples of files <-> float32 in [0, 1].

Float -> integer is ``rint(clip(x, 0, 1) * (2**bits - 1))``, round to nearest with ties to
even; integer -> float divides by ``2**bits - 1``. An 8-bit or 16-bit image read and written
unchanged is therefore bit-identical.
"""

from __future__ import annotations

import numpy as np

from exposure_slot.errors import ImageTypeError, InvalidImageError, OptionError

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
