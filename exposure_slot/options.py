"""How one call corrects its images: the options, checked once where the call enters.

:class:`Options` is built from what the caller passed (``ExposureCorrector.__call__`` and
``plan``); planning (:func:`exposure_slot.highres.plan`) and execution read it and check
nothing again. Every refusal is an :class:`~exposure_slot.errors.OptionError` naming the
option and what it may be.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .descriptor import DESCRIPTOR
from .errors import OptionError

MODES = ("auto", "exact", "fast")
"""``exact``: the whole-image answer, tiled when large; ``fast``: the network on a proxy,
its correction carried to full resolution; ``auto``: one or the other by image size."""

MAX_STRENGTH = 2.0
"""Largest strength accepted: twice the correction's step in Oklab, clipped to [0, 1]."""

MIN_TILE_SIZE = 64
"""Smallest ``tile_size`` accepted (input pixels)."""

MIN_PROXY_SIZE = 64
"""Smallest ``proxy_size`` accepted (input pixels, the proxy's long side)."""


def _whole(name: str, value: Any, rule: str, ok: Callable[[int], bool]) -> int | None:
    """``value`` as an int (None stays None) if it is one and ``ok``; else OptionError."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and ok(int(value)):
        return int(value)
    raise OptionError(f"{name} must be {rule} (or None), not {value!r}")


def check_strength(strength: object) -> float:
    """``strength`` as a float in [0, MAX_STRENGTH], or OptionError."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise OptionError(f"strength must be a number from 0 to {MAX_STRENGTH}, not {strength!r}")
    value = float(strength)
    if not (0 <= value <= MAX_STRENGTH) or math.isnan(value):
        raise OptionError(f"strength must be from 0 to {MAX_STRENGTH}, not {strength!r}")
    return value


def check_tile_size(tile_size: Any) -> int | None:
    """``tile_size`` as an int (None stays None): a multiple of the network's size multiple,
    at least :data:`MIN_TILE_SIZE`; else OptionError."""
    multiple = DESCRIPTOR.size_multiple
    return _whole(
        "tile_size",
        tile_size,
        f"an int, a multiple of {multiple}, at least {MIN_TILE_SIZE}",
        lambda n: n >= MIN_TILE_SIZE and n % multiple == 0,
    )


@dataclass(frozen=True)
class Options:
    """The options of one correction, checked and normalised on construction.

    ``mode``: one of :data:`MODES`. ``tile_size``: input pixels per tile of an exact pass
    (None: sized for the memory budget). ``proxy_size``: long side of the fast path's proxy
    (None: :data:`exposure_slot.highres.DEFAULT_PROXY_SIZE`); with ``mode="exact"`` it would
    have no effect and is refused. ``max_memory``: bytes an exact pass plans to use (None: a
    share of the free memory; a float such as ``2e9`` is taken as whole bytes).
    ``strength``: how much of the correction to apply, 0 to
    :data:`MAX_STRENGTH`. ``progress``: show a progress bar.
    """

    mode: str = "auto"
    tile_size: int | None = None
    proxy_size: int | None = None
    max_memory: int | None = None
    strength: float = 1.0
    progress: bool = False

    def __post_init__(self) -> None:
        strength = check_strength(self.strength)
        mode = self.mode
        if not isinstance(mode, str) or mode not in MODES:
            raise OptionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        tile_size = check_tile_size(self.tile_size)
        proxy_size = _whole(
            "proxy_size", self.proxy_size, f"an int, at least {MIN_PROXY_SIZE}",
            lambda n: n >= MIN_PROXY_SIZE,
        )  # fmt: skip
        if mode == "exact" and proxy_size is not None:
            raise OptionError(
                f"proxy_size {proxy_size} has no effect in exact mode: leave it out, or use "
                "mode 'fast' or 'auto'"
            )
        max_memory = self.max_memory
        if isinstance(max_memory, float) and math.isfinite(max_memory) and max_memory >= 1:
            max_memory = int(max_memory)
        max_memory = _whole("max_memory", max_memory, "a positive number of bytes", lambda n: n > 0)
        if not isinstance(self.progress, bool):
            raise OptionError(f"progress must be True or False, not {self.progress!r}")
        for name, value in (
            ("strength", strength),
            ("tile_size", tile_size),
            ("proxy_size", proxy_size),
            ("max_memory", max_memory),
        ):
            object.__setattr__(self, name, value)
