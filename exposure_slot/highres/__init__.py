"""High-resolution execution: exact tiling, the fast proxy path, and the rule between them.

- ``exact``: the whole-image answer (:func:`exact.exact_forward`). The image is kept in one
  tile when its pass fits the memory budget, otherwise it is split into tiles and the sums
  over pixels are done in lockstep over all of them.
- ``fast``: the network on a proxy (long side ``proxy_size``), its correction carried to
  full resolution by :func:`fast.transfer` (local affine colour fit, edge-aware).
- ``auto`` (default): exact up to :data:`EXACT_PIXEL_BUDGET` pixels for the device type,
  fast beyond. :func:`plan` says which, and why; the choice is logged at INFO level.

Memory budget: :data:`MEMORY_FRACTION` of the memory available on the device (free GPU
memory, or the RAM the OS reports as available). Exact mode's peak above the process's
baseline is :data:`BYTES_PER_PIXEL` per pixel for an image kept in one tile; a tiled pass
needs ``image`` bytes per image pixel (tokens, attention state, input and output) plus
``tile`` bytes per tile pixel (measured with float32 and bfloat16 on CPU).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import torch

from ..errors import OptionError
from .exact import DECODER_HALO

log = logging.getLogger("exposure_slot")

MODES = ("auto", "exact", "fast")

EXACT_PIXEL_BUDGET = {"cpu": 4_000_000, "mps": 8_000_000, "cuda": 24_000_000}
"""Largest image (pixels) that ``auto`` runs exactly, per device type. On CPU exact mode
costs about 4 s per megapixel and core (benchmarks/highres.py), so 4 MP is about 16 s on
one core; the fast path takes a few seconds at any size."""


@dataclass(frozen=True)
class MemoryModel:
    """Bytes of exact mode's peak per pixel: ``one_tile`` per image pixel for an image kept
    in one tile; else ``image`` per image pixel plus ``tile`` per pixel of a tile."""

    one_tile: int
    image: int
    tile: int


BYTES_PER_PIXEL = {4: MemoryModel(500, 250, 300), 2: MemoryModel(300, 170, 160)}
"""Memory models by bytes per element of the compute dtype (float32; float16/bfloat16).
Measured peaks (RSS above the baseline): float32 450-490 B/px in one tile, 230-270 B/px
with 512-1024 px tiles on 2-4 MP; bfloat16 280 and 190 B/px."""

MEMORY_FRACTION = 0.25
"""Share of the available memory exact mode plans to use."""

MIN_TILE = 512
"""Smallest tile side: smaller tiles spend much of their time on halos and recomputed skip
features (12% more work at 512 than in one tile, plus the recomputed skips)."""

DEFAULT_PROXY_SIZE = 1024
"""Long side of the fast path's proxy."""


@dataclass(frozen=True)
class Plan:
    """How an image will be processed: mode, tile size and count (exact), or proxy size (fast)."""

    mode: str
    height: int
    width: int
    tile_size: int | None = None
    proxy_size: int | None = None
    reason: str = ""

    @property
    def tiles(self) -> int:
        """Number of tiles of an exact pass (1: the image is kept whole)."""
        if self.tile_size is None:
            return 0
        return math.ceil(self.height / self.tile_size) * math.ceil(self.width / self.tile_size)

    def __str__(self) -> str:
        size = f"tile {self.tile_size}" if self.mode == "exact" else f"proxy {self.proxy_size}"
        text = f"{self.mode} ({size}) for {self.width}×{self.height}: {self.reason}"
        if self.mode == "exact":
            text += "; whole image in one tile" if self.tiles == 1 else f"; {self.tiles} tiles"
        return text


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


def tile_size_for(height: int, width: int, device: torch.device, dtype: torch.dtype) -> int:
    """Tile side for an exact pass that fits the memory budget.

    The image's own (padded) long side when the whole image fits; otherwise the largest
    multiple of 64 whose tiles (with their halo) fit next to the image's share, and at least
    :data:`MIN_TILE` (an image too large for the budget then still runs, over budget).
    """
    model = BYTES_PER_PIXEL[4 if dtype == torch.float32 else 2]
    budget = available_memory(device) * MEMORY_FRACTION
    pixels = height * width
    if model.one_tile * pixels <= budget:
        return max(height, width) + -max(height, width) % 4
    region_pixels = max(0.0, budget - model.image * pixels) / model.tile
    side = math.isqrt(int(region_pixels)) - 2 * DECODER_HALO
    return max(MIN_TILE, side // 64 * 64)


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
        reason += f" on {device.type}"
    else:
        reason = "requested"
    if mode == "exact":
        if tile_size is None:
            tile_size = tile_size_for(height, width, device, dtype)
            reason += f"; tile sized for {MEMORY_FRACTION:.0%} of free {device.type} memory"
        return Plan("exact", height, width, tile_size=tile_size, reason=reason)
    return Plan("fast", height, width, proxy_size=proxy, reason=reason)
