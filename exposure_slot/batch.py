"""Correcting files: one photo file into another, keeping what the command line keeps.

:func:`correct_file` is the one-call way from Python; the command line, the Ray stage and
the web app write each result through :func:`write_corrected`, so every door keeps the same
things: the pixels upright (EXIF orientation applied), the ICC profile, EXIF and XMP, the bit
depth, grayscale and alpha, and exposure-slot's mark (see :func:`imageio.is_our_output`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageWriteError
from .files import (
    DEFAULT_MAX_PIXELS,
    ImageData,
    atomic_write_bytes,
    is_our_output,
    read_image,
    write_image,
)

if TYPE_CHECKING:
    from .corrector import ExposureCorrector


def write_corrected(
    corrector: ExposureCorrector,
    data: ImageData,
    target: Path,
    *,
    quality: int | None = None,
    **options: Any,
) -> None:
    """Correct a decoded photo and write it to ``target`` like its source (folders made);
    ``options`` are the corrector's (``mode``, ``strength`` ...)."""
    fixed = corrector(data.rgb, **options)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image(target, fixed, like=data, quality=quality)


def correct_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    corrector: ExposureCorrector | None = None,
    *,
    overwrite: bool = False,
    quality: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    **options: Any,
) -> Path:
    """Correct the photo file ``source`` into ``target`` (format from its extension).

    ``corrector`` defaults to a new ``ExposureCorrector()`` (pass one when correcting many
    files). ``target`` may be an earlier result of exposure-slot; any other existing file is
    only replaced with ``overwrite=True``, and ``source`` itself never. ``options`` go to the
    corrector (``mode``, ``strength`` ...). Returns ``target``.
    """
    source, target = Path(source), Path(target)
    if target.exists():
        if source.exists() and os.path.samefile(source, target):
            raise ImageWriteError(f"refusing to write {target} over its own input")
        if not overwrite and not is_our_output(target):
            raise ImageWriteError(
                f"refusing to replace {target}, which exposure-slot did not write "
                "(overwrite=True replaces it)"
            )
    if corrector is None:
        from .corrector import ExposureCorrector

        corrector = ExposureCorrector()
    data = read_image(source, max_pixels=max_pixels)
    write_corrected(corrector, data, target, quality=quality, **options)
    return target


RESULT_FIELDS = ("input", "output", "status", "error", "seconds", "plan")
"""The fields of a report line: one per input, from the command line and the Ray stage."""
STATUSES = ("written", "skipped", "failed")
"""The values of a report line's ``status``."""


def plan_options(options: dict[str, Any]) -> dict[str, Any]:
    """The corrector options that :meth:`ExposureCorrector.plan` takes (all but strength)."""
    return {key: value for key, value in options.items() if key != "strength"}


def result_row(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str] | None,
    status: str,
    error: str = "",
    *,
    start: float | None = None,
    plan: str = "",
) -> dict[str, Any]:
    """One input's report line; ``start`` is the ``time.perf_counter()`` its work began."""
    seconds = 0.0 if start is None else round(time.perf_counter() - start, 3)
    output = "" if target is None else str(target)
    values = (str(source), output, status, error, seconds, plan)
    return dict(zip(RESULT_FIELDS, values, strict=True))


def check_report_target(path: Path) -> None:
    """Refuse a report path that holds anything but an earlier report (never replace a file
    we did not write), or that is a folder."""
    if path.is_dir():
        raise ImageWriteError(f"--report {path} is a folder")
    if not path.exists():
        return
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        ours = all(set(json.loads(line)) == set(RESULT_FIELDS) for line in lines if line)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        ours = False
    if not ours:
        raise ImageWriteError(f"refusing to replace {path}: it is not a report exposure-slot wrote")


def write_report(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write result rows as JSON Lines, atomically (a reader never sees half a report)."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_bytes(path, text.encode("utf-8"))
