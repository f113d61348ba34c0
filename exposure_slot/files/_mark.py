"""Our mark: put in every file write_image writes, so that a later run knows which files it
may replace (:func:`is_our_output`), and never replaces a photographer's own."""

from __future__ import annotations

import os
import struct
import warnings
from typing import BinaryIO

from PIL import Image

MARK = "exposure-slot"
"""Put in every file write_image writes, so that a later run knows which files it may replace:
PNG tEXt ``Software``, JPEG APP15 segment, TIFF ``Software`` tag, WebP chunk ``ESLT``, BMP
header reserved bytes (application-defined by the format)."""
JPEG_MARK = MARK.encode() + b"\x00"
_WEBP_MARK_CHUNK = b"ESLT"
_BMP_MARK = b"ExSl"
_BMP_MARK_OFFSET = 6  # bfReserved1 and bfReserved2 of the file header


def webp_with_mark(data: bytes, shape: tuple[int, ...]) -> bytes:
    """Append our mark chunk to a WebP file, first turning a simple-format file (lone VP8/VP8L
    chunk, where no other chunk may follow) into the extended format (VP8X header)."""
    chunks = data[12:]
    if chunks[:4] != b"VP8X":
        height, width = shape[:2]
        flags = 0x10 if shape[2] == 4 else 0  # alpha
        canvas = struct.pack("<I", flags) + (width - 1).to_bytes(3, "little")
        canvas += (height - 1).to_bytes(3, "little")
        chunks = _riff_chunk(b"VP8X", canvas) + chunks
    chunks += _riff_chunk(_WEBP_MARK_CHUNK, MARK.encode())
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def mark_bmp(f: BinaryIO) -> None:
    """Put our mark in the header of the BMP file just written to ``f``."""
    f.seek(_BMP_MARK_OFFSET)
    f.write(_BMP_MARK)
    f.seek(0, os.SEEK_END)


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
                return head[_BMP_MARK_OFFSET : _BMP_MARK_OFFSET + len(_BMP_MARK)] == _BMP_MARK
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _riff_has_mark(f)
            f.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(f) as im:
                    if im.format == "JPEG":
                        return ("APP15", JPEG_MARK) in im.applist
                    if im.format == "PNG":
                        return im.info.get("Software") == MARK
                    if im.format == "TIFF":
                        return im.tag_v2.get(305) == MARK
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
            return f.read(size) == MARK.encode()
        f.seek(size + size % 2, os.SEEK_CUR)
    return False
