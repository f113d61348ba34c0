"""Damage checks: a damaged file is an ImageReadError naming it, never a picture.

Every image is fully decoded (a truncated file raises, as long as Pillow's global
``ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default, False; we never change it), and before
that, damage the decoders would paper over is looked for (:func:`check_intact`): libjpeg's
warnings about the scan data, PNG CRCs and data size, TIFF strip layout, Deflate checksums,
and (from Pillow's warnings) a damaged TIFF directory.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
from PIL import Image, TiffTags

from exposure_slot.errors import ImageReadError

from ._formats import PNG_SAMPLES, PNG_SIGNATURE
from ._opencv import LIBJPEG_DAMAGE, OPENCV_MAX_PIXELS, opencv_decode_reporting
from ._tiff_layout import DEFLATE, byte_order, rows_per_strip, strips, tag_ints


@contextlib.contextmanager
def pillow_warnings() -> Iterator[list[warnings.WarningMessage]]:
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


def refuse_damaged_tiff_directory(
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


def check_intact(im: Image.Image, fp: BinaryIO, name: str) -> None:
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


def _check_jpeg(im: Image.Image, name: str) -> None:
    """libjpeg must decode the whole scan data without a warning about it."""
    if im.width * im.height > OPENCV_MAX_PIXELS:
        return  # more than OpenCV decodes: Pillow's own checks only
    reduced, report = opencv_decode_reporting(
        name, cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_IGNORE_ORIENTATION
    )
    damage = LIBJPEG_DAMAGE.search(report)
    if damage:
        reason = damage.group(0).strip()
        raise ImageReadError(f"cannot decode {name}: {reason} (the file is damaged)")
    if reduced is None:
        raise ImageReadError(f"cannot decode {name}: libjpeg cannot decode it (is it corrupt?)")


_READ_BLOCK = 1 << 20
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2))
_ADAM7 += ((1, 0, 2, 1),)


def _check_png(fp: BinaryIO, name: str) -> None:
    """Every chunk up to IEND must be complete and match its CRC, the header must be valid,
    and the pixel data must inflate, up to its checksum, to exactly the size it declares."""
    fp.seek(len(PNG_SIGNATURE))
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
    bits = depth * PNG_SAMPLES[colour]
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
    order = byte_order(header)
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
    bits = tag_ints(tags, 258, (1,))
    width, height = int(tags.get(256, 0)), int(tags.get(257, 0))  # as stored, not turned
    planar, compression = tags.get(284, 1), tags.get(259, 1)
    planes = len(bits) if planar == 2 else 1
    offsets, counts = strips(im)
    if 273 in tags:
        rows = rows_per_strip(tags, height)
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
    if compression in DEFLATE:
        for offset, count in zip(offsets, counts, strict=True):
            fp.seek(offset)
            inflater = zlib.decompressobj()
            _inflated_size(inflater, fp.read(count), name)
            if not inflater.eof:
                raise ImageReadError(
                    f"cannot decode {name}: the Deflate data at byte {offset} is cut short"
                )
