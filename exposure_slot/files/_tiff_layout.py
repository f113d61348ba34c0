"""How a TIFF page lays out its pixels, read from its tags: what the damage check and the
planar 16-bit reader both need."""

from __future__ import annotations

from typing import Any

from PIL import Image

DEFLATE = (8, 32946)
"""Compression values of Deflate data (Adobe's, and the older code)."""


def tag_ints(tags: Any, key: int, default: Any = ()) -> tuple[int, ...]:
    """A tag's value as a tuple of ints (Pillow gives a lone value where the count is one)."""
    value = tags.get(key, default)
    return tuple(int(v) for v in (value if isinstance(value, tuple) else (value,)))


def strips(im: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Offsets and byte counts of the current TIFF page's strips (or tiles)."""
    tags = im.tag_v2
    offsets, counts = (273, 279) if 273 in tags else (324, 325)
    return tag_ints(tags, offsets), tag_ints(tags, counts)


def rows_per_strip(tags: Any, height: int) -> int:
    """RowsPerStrip, cut to the height (a missing tag means one strip), at least 1."""
    return max(1, min(int(tags.get(278, height)), height))


def byte_order(header: bytes) -> str:
    """The struct / numpy byte order of a TIFF whose file starts with ``header``."""
    return ">" if header[:2] == b"MM" else "<"


def associated_alpha(tags: Any) -> bool:
    """Whether the extra sample is associated (premultiplied) alpha."""
    return tags.get(338) in (1, (1,))
