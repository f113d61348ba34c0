"""High-resolution execution: exact tiling, the fast proxy path, and the rule between them.

- ``exact``: the whole-image answer. One pass when the image fits the memory budget,
  otherwise :func:`exact.exact_forward` (tiles plus lockstep sums over pixels).
- ``fast``: the network on a proxy (long side ``proxy_size``), its correction carried to
  full resolution by :func:`fast.transfer` (local affine colour fit, edge-aware).
- ``auto`` (default): exact up to :data:`EXACT_PIXEL_BUDGET` pixels for the device,
  fast beyond. :func:`plan` says which, and why; the choice is logged at INFO level.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from ..errors import OptionError

log = logging.getLogger("exposure_slot")

MODES = ("auto", "exact", "fast")

EXACT_PIXEL_BUDGET = {"cpu": 4_000_000, "mps": 8_000_000, "cuda": 24_000_000}
"""Largest image (pixels) that ``auto`` runs exactly, per device type: about 20 s on a
2-core CPU (benchmarks/highres.py measures it); larger images use the fast path."""

BYTES_PER_TILE_PIXEL = {4: 1600, 2: 900}
"""Peak working memory per input pixel of a tile pass, by bytes per element (float32,
half precision); measured with benchmarks/highres.py."""

MEMORY_FRACTION = 0.25
"""Share of the available memory a tile may use."""

DEFAULT_PROXY_SIZE = 1024


@dataclass(frozen=True)
class Plan:
    """How an image will be processed: mode, tile size (exact) or proxy size (fast)."""

    mode: str
    height: int
    width: int
    tile_size: int | None = None
    proxy_size: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        size = f"tile {self.tile_size}" if self.mode == "exact" else f"proxy {self.proxy_size}"
        return f"{self.mode} ({size}) for {self.width}×{self.height}: {self.reason}"


def available_memory(device: torch.device) -> int:
    """Bytes free for work on ``device`` (free GPU memory, or available RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def tile_size_for(device: torch.device, dtype: torch.dtype) -> int:
    """The largest tile side (multiple of 64, at least 256) whose pass fits the budget."""
    per_pixel = BYTES_PER_TILE_PIXEL[4 if dtype == torch.float32 else 2]
    pixels = available_memory(device) * MEMORY_FRACTION / per_pixel
    return max(256, int(pixels**0.5) // 64 * 64)


def plan(
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
    mode: str = "auto",
    tile_size: int | None = None,
    proxy_size: int | None = None,
) -> Plan:
    """Decide mode and sizes for an image of ``height × width`` pixels."""
    if mode not in MODES:
        raise OptionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if tile_size is not None and (tile_size < 64 or tile_size % 4):
        raise OptionError(f"tile_size must be a multiple of 4 and at least 64, not {tile_size}")
    if proxy_size is not None and proxy_size < 64:
        raise OptionError(f"proxy_size must be at least 64, not {proxy_size}")
    pixels = height * width
    budget = EXACT_PIXEL_BUDGET.get(device.type, EXACT_PIXEL_BUDGET["cpu"])
    proxy = proxy_size or DEFAULT_PROXY_SIZE
    if mode == "auto":
        if pixels <= budget or max(height, width) <= proxy:
            mode, reason = "exact", f"{pixels / 1e6:.1f} MP ≤ {budget / 1e6:.0f} MP exact budget"
        else:
            mode, reason = "fast", f"{pixels / 1e6:.1f} MP > {budget / 1e6:.0f} MP exact budget"
    else:
        reason = "requested"
    if mode == "exact":
        return Plan("exact", height, width, tile_size=tile_size or tile_size_for(device, dtype),
                    reason=reason)  # fmt: skip
    return Plan("fast", height, width, proxy_size=proxy, reason=reason)
