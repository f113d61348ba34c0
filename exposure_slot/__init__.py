"""exposure-slot: fix badly exposed photos with slot-in-slot attention (CVPR 2025).

>>> from exposure_slot import ExposureCorrector
>>> corrector = ExposureCorrector()          # doctest: +SKIP
>>> fixed = corrector(img)                   # doctest: +SKIP

The names that need torch are imported on first use, so that ``import exposure_slot`` (and
the command line's ``--help``) stays quick and leaves the process free to configure torch's
threads before torch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    CompileError,
    DownloadError,
    ExportError,
    ExposureSlotError,
    ImageReadError,
    ImageTooLargeError,
    ImageTypeError,
    ImageWriteError,
    InvalidImageError,
    MissingExtraError,
    OptionError,
    UnsupportedPrecisionError,
    WeightsError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)

if TYPE_CHECKING:
    from .batch import correct_file
    from .corrector import ExposureCorrector, SlotMaps
    from .network import ExposureSlotNet, NetConfig

__version__ = "0.1.0"

_LAZY = {
    "ExposureCorrector": ".corrector",
    "SlotMaps": ".corrector",
    "ExposureSlotNet": ".network",
    "NetConfig": ".network",
    "correct_file": ".batch",
    "correct_files": ".batch",
}
"""Public names that load torch, and the module each comes from."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CompileError",
    "DownloadError",
    "ExportError",
    "ExposureCorrector",
    "ExposureSlotError",
    "ExposureSlotNet",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageTypeError",
    "ImageWriteError",
    "InvalidImageError",
    "MissingExtraError",
    "NetConfig",
    "OptionError",
    "SlotMaps",
    "UnsupportedPrecisionError",
    "WeightsError",
    "WeightsIntegrityError",
    "WeightsNotFoundError",
    "__version__",
    "correct_file",
    "correct_files",
]
