"""read_image: from a path to an :class:`ImageData`, every failure an ImageReadError.

Here: checking the path, the pixel limit (read from the header, before any pixel is decoded)
and Pillow's own, and choosing the one picture a file holds. One picture per file: a TIFF's
reduced-resolution pages (thumbnails, previews) and masks are skipped, whichever page the
full-resolution one is; a JPEG's extra pictures (MPO) are ignored; animations and multi-page
files raise ImageReadError rather than lose frames. The pixels are decoded by
:mod:`._decode`, after :mod:`._integrity` looked for damage.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from exposure_slot.errors import (
    ExposureSlotError,
    ImageReadError,
    ImageTooLargeError,
    OptionError,
)

from ._decode import ImageData, decode
from ._integrity import pillow_warnings, refuse_damaged_tiff_directory
from ._paths import path_name, reason_of

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Largest width × height :func:`read_image` decodes unless told otherwise (bomb guard)."""

_PILLOW_LIMIT_LOCK = threading.Lock()


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ImageData:
    """Read an image file into an :class:`ImageData` (float32 RGB in [0, 1], upright).

    The pixel count is checked from the header, before anything is decoded: more than
    ``max_pixels`` raises ImageTooLargeError (``max_pixels=None`` disables the guard, which then
    also replaces Pillow's own decompression-bomb limit). Every failure to read is an
    ImageReadError naming the file and the reason.
    """
    name = path_name(path, ImageReadError)
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


def _check_readable(name: str) -> None:
    """Refuse a missing, unreadable, empty path or a folder, with the reason."""
    try:
        size = os.stat(name).st_size
    except FileNotFoundError as exc:
        raise ImageReadError(f"no such file: {name}") from exc
    except OSError as exc:
        raise ImageReadError(f"cannot read {name}: {reason_of(exc)}") from exc
    if os.path.isdir(name):
        raise ImageReadError(f"cannot read {name}: it is a directory, not an image file")
    if size == 0:
        raise ImageReadError(f"cannot read {name}: the file is empty (0 bytes)")


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
    """Open ``name``, choose its picture, check its size, and decode it."""
    with _pillow_bomb_guard(lift_pillow_limit):
        try:
            fp = open(name, "rb")  # noqa: SIM115 (closed by the with statement below)
        except OSError as exc:
            raise ImageReadError(f"cannot read {name}: {reason_of(exc)}") from exc
        # Pillow gets a file object, not the path, so that it never memory-maps the pixels:
        # its mmap path ignores the size swap of a TIFF turned by 90° and garbles the image.
        with fp, pillow_warnings() as caught, _identify(fp, name) as im:
            with _failure_as_read_error("read", name):
                _select_picture(im, name)
                refuse_damaged_tiff_directory(im, caught, name)
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{name} is {width}×{height} = {width * height:,} pixels, more than the limit"
                    f" of {max_pixels:,} (a guard against decompression bombs); pass a larger"
                    " max_pixels, or max_pixels=None, to read it anyway"
                )
            with _failure_as_read_error("decode", name):
                return decode(im, fp, name)


@contextlib.contextmanager
def _failure_as_read_error(doing: str, name: str) -> Iterator[None]:
    """Turn a decoder's exception into an ImageReadError naming the file (ours, and Pillow's
    bomb error that :func:`read_image` acts on, pass through)."""
    try:
        yield
    except (Image.DecompressionBombError, ExposureSlotError):
        raise
    except Exception as exc:
        raise ImageReadError(
            f"cannot {doing} {name}: {reason_of(exc)} (is the file truncated or corrupt?)"
        ) from exc


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
        raise ImageReadError(f"cannot read {name}: {reason_of(exc)}") from exc


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
