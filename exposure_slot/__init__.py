"""exposure-slot: fix badly exposed photos with slot-in-slot attention (CVPR 2025).

>>> from exposure_slot import ExposureCorrector
>>> corrector = ExposureCorrector()          # doctest: +SKIP
>>> fixed = corrector(img)                   # doctest: +SKIP
"""

from .corrector import ExposureCorrector, SlotMaps
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
from .network import ExposureSlotNet, NetConfig

__version__ = "0.1.0"

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
]
