"""Exceptions raised by exposure-slot.

Every error a user can cause (a bad image, a bad weights file, an unsupported option)
is raised as one of these. Each subclasses the matching builtin (ValueError, TypeError
or OSError), so ``except ValueError`` keeps working in code that does not know us.
"""

from __future__ import annotations


class ExposureSlotError(Exception):
    """Base class of every error raised on purpose by this library."""


class InvalidImageError(ExposureSlotError, ValueError):
    """An image has a value problem: wrong shape, channel count, NaN, empty, too large."""


class ImageTypeError(ExposureSlotError, TypeError):
    """An image argument is of a type we cannot process (None, bool array, a list of lists)."""


class ImageReadError(ExposureSlotError, OSError):
    """An image file cannot be read or decoded (missing, empty, truncated, not an image)."""


class ImageWriteError(ExposureSlotError, OSError):
    """An output image cannot be written (permission, full disk, unknown extension)."""


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels than the configured limit (decompression-bomb guard)."""


class WeightsError(ExposureSlotError, ValueError):
    """A state dict or weights folder does not describe an Exposure-slot network."""


class WeightsNotFoundError(ExposureSlotError, OSError):
    """Weights cannot be found locally, in the manifest, or on the Hub."""


class WeightsIntegrityError(ExposureSlotError, OSError):
    """A weights file is truncated, unreadable, or its sha256 does not match the manifest."""


class DownloadError(ExposureSlotError, OSError):
    """Downloading weights from the Hub failed (network, server error, missing file)."""


class UnsupportedPrecisionError(ExposureSlotError, ValueError):
    """A dtype/device combination that is not supported or not numerically safe."""


class OptionError(ExposureSlotError, ValueError):
    """An option passed to the corrector or the CLI is not valid."""


class CompileError(ExposureSlotError, OSError):
    """``torch.compile`` (an opt-in) failed on this machine, e.g. no working C++ compiler."""


class MissingExtraError(ExposureSlotError, ImportError):
    """An optional feature's dependency is not installed; the message names the extra."""


class ExportError(ExposureSlotError, OSError):
    """An exported model (ONNX) could not be written."""
