"""Path arguments and OS errors as the messages of reading and writing name them."""

from __future__ import annotations

import os

from exposure_slot.errors import ExposureSlotError, ImageTypeError


def path_name(path: object, error: type[ExposureSlotError]) -> str:
    """``path`` (str, bytes or os.PathLike) as a str; ``error`` if it is empty."""
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


def reason_of(exc: BaseException) -> str:
    """What went wrong, for a message: an OS error's text without its errno and path."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
