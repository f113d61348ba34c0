"""The metadata carried from the file read to the file written, and the orientation read.

* EXIF is kept byte for byte except two in-place edits: Orientation is set to 1 and the link
  to the embedded thumbnail (IFD1) is cleared, because that thumbnail shows the uncorrected,
  un-rotated picture. EXIF is always ``b"Exif\\0\\0"`` + a TIFF structure (the JPEG APP1
  convention). TIFF files have no EXIF block: their descriptive tags (Make, Model, DateTime,
  the Exif and GPS sub-directories...) are gathered into one, and merged back into the TIFF
  directory on write.
* Also carried: dpi (JPEG, PNG, TIFF, BMP), XMP (JPEG, PNG, TIFF, WebP; Orientation reset),
  JPEG comment and JPEG APP13 (IPTC / Photoshop) segments between JPEG files. Not carried:
  PNG text chunks other than XMP, other JPEG APPn segments, the EXIF thumbnail.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
from PIL import Image

_ORIENTATION_TAG = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
EXIF_PREFIX = b"Exif\x00\x00"
_XMP_ORIENTATION = re.compile(rb"(tiff:Orientation\s*(?:=\s*[\"']|>)\s*)[0-9]")
# TIFF tags that describe pixel storage rather than the picture: never copied between files.
_TIFF_STORAGE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282, 283}
    | {284, 296, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514}
    | {530, 531, 532, 700, 34675, _ORIENTATION_TAG}
)


def exif_orientation(im: Image.Image) -> int:
    """The EXIF Orientation (1-8) of ``im``'s current state; 1 where there is none."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # unreadable EXIF: Pillow would not rotate either
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def exif_of(im: Image.Image) -> bytes | None:
    """The file's EXIF as ``Exif\\0\\0`` + TIFF bytes, Orientation 1 and no thumbnail link."""
    raw = im.info.get("exif")
    if raw:
        return normalise_exif(raw)
    if im.format != "TIFF":
        return None
    tags = descriptive_exif_tags(im.getexif())
    if not tags:
        return None
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return normalise_exif(exif.tobytes())


def descriptive_exif_tags(exif: Image.Exif) -> dict[int, Any]:
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


def normalise_exif(raw: bytes) -> bytes:
    """Add the ``Exif\\0\\0`` prefix, set Orientation to 1 and unlink IFD1, all in place.

    Everything else stays byte-identical (maker notes keep their offsets). A block we cannot
    walk is returned unchanged: Pillow could not have read an orientation from it either.
    """
    data = bytearray(raw if raw.startswith(EXIF_PREFIX) else EXIF_PREFIX + raw)
    tiff = memoryview(data)[len(EXIF_PREFIX) :]
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


def normalise_xmp(xmp: bytes | str) -> bytes:
    """XMP as bytes, its ``tiff:Orientation`` set to 1."""
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return _XMP_ORIENTATION.sub(rb"\g<1>1", data)


def extra_info(im: Image.Image, orientation: int) -> dict[str, Any]:
    """``ImageData.info``: the file's orientation, and its dpi, XMP, comment and APP13."""
    info: dict[str, Any] = {"orientation": orientation}
    dpi = im.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        values = tuple(float(v) for v in dpi)
        if all(np.isfinite(v) and v > 0 for v in values):
            info["dpi"] = values
    xmp = im.info.get("xmp")
    if xmp:
        info["xmp"] = normalise_xmp(xmp)
    comment = im.info.get("comment")
    if comment:
        info["comment"] = comment
    app13 = [data for marker, data in getattr(im, "applist", ()) if marker == "APP13"]
    if app13:
        info["app13"] = app13
    return info
