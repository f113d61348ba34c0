"""High-resolution execution: exact tiling, the fast proxy path, and the rule between them.

- ``exact``: the whole-image answer (:func:`exact.exact_forward`). The image is kept in one
  tile when its pass fits the memory budget, otherwise it is split into tiles and the sums
  over pixels are done in lockstep over all of them.
- ``fast``: the network on a proxy (long side ``proxy_size``), its correction carried to
  full resolution by :func:`fast.transfer` (local affine colour fit, edge-aware).
- ``auto`` (default): exact up to :data:`EXACT_PIXEL_BUDGET` pixels for the device type,
  fast beyond. :func:`plan` says which, and why; the choice is logged at INFO level.

This module plans; :mod:`.pipeline` runs a plan (both modes) on one image.

Memory budget: ``max_memory`` bytes, by default :data:`MEMORY_FRACTION` of the memory
available on the device (free GPU memory, or the RAM the OS reports as available). Exact
mode's peak above the process's baseline is :data:`BYTES_PER_PIXEL` per pixel for an image
kept in one tile. A tiled pass needs ``image`` bytes per image pixel (the 1/4-resolution
tokens), ``tile`` bytes per tile pixel, and ``state`` bytes per image pixel for the
attention state kept between the sums over pixels. When that state does not fit, only part
of it is kept and the rest is recomputed at every sum, so memory stays within the budget
(benchmarks/highres.py measures what that costs).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import torch

from ..descriptor import DESCRIPTOR
from ..options import Options

log = logging.getLogger("exposure_slot")

DEFAULT_OPTIONS = Options()
"""What :func:`plan` assumes when it is given no options."""

EXACT_PIXEL_BUDGET = {"cpu": 4_000_000, "mps": 8_000_000, "cuda": 24_000_000}
"""Largest image (pixels) that ``auto`` runs exactly, per device type: exact mode's time
grows with the pixels, the fast path's hardly (benchmarks/highres.py measures both)."""


@dataclass(frozen=True)
class MemoryModel:
    """Bytes of exact mode's peak per pixel: ``one_tile`` per image pixel for an image kept
    in one tile; else ``image`` per image pixel, ``state`` per image pixel whose attention
    state is kept, and ``tile`` per pixel of a tile."""

    one_tile: int
    image: int
    state: int
    tile: int


BYTES_PER_PIXEL = {4: MemoryModel(500, 40, 160, 300), 2: MemoryModel(300, 24, 150, 160)}
"""Memory models by bytes per element of the compute dtype (float32; float16/bfloat16),
set a little above measured peaks (RSS above the baseline); benchmarks/highres.py
--max-memory checks that peaks stay within the budget plus the process and the image."""

MEMORY_FRACTION = 0.25
"""Share of the available memory exact mode plans to use."""

MIN_TILE = 512
"""Smallest tile side a plan picks: smaller tiles spend much of their time on halos and
recomputed skip features."""

REPLAY_TILE = 1024
"""Largest tile side when the attention state does not fit and is partly recomputed: the
rest of the budget goes to keeping state."""

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
    live_tokens: int | None = None
    """Tokens (1/16 of the pixels) whose attention state an exact pass keeps; None: all."""
    dtype: torch.dtype = torch.float32
    """Compute dtype of the network's pass (the proxy's in fast mode)."""

    @property
    def tiles(self) -> int:
        """Number of tiles of an exact pass (1: the image is kept whole)."""
        if self.tile_size is None:
            return 0
        return math.ceil(self.height / self.tile_size) * math.ceil(self.width / self.tile_size)

    def __str__(self) -> str:
        size = f"tile {self.tile_size}" if self.mode == "exact" else f"proxy {self.proxy_size}"
        size += f", {str(self.dtype).removeprefix('torch.')}"
        text = f"{self.mode} ({size}) for {self.width}×{self.height}: {self.reason}"
        if self.mode == "exact":
            text += "; whole image in one tile" if self.tiles == 1 else f"; {self.tiles} tiles"
        if self.mode == "exact" and self.live_tokens is not None:
            kept = min(1.0, 16 * self.live_tokens / (self.height * self.width))
            text += f"; attention state kept for {kept:.0%} of the image, recomputed for the rest"
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


def _side(pixels: float) -> int:
    """The largest multiple of 64 whose tiles, grown by their halo, hold ``pixels``."""
    return max(0, math.isqrt(int(max(0.0, pixels))) - 2 * DESCRIPTOR.decoder_halo) // 64 * 64


def exact_sizes(
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
    tile_size: int | None = None,
    max_memory: int | None = None,
) -> tuple[int, int | None]:
    """Tile side and kept attention tokens (None: all) for an exact pass in the budget.

    The image's own (padded) long side when the whole image fits. Otherwise the largest
    multiple of 64 (at least :data:`MIN_TILE`) whose tiles fit beside the tokens and the
    whole attention state; when even a :data:`MIN_TILE` tile does not fit beside them,
    tiles of up to :data:`REPLAY_TILE` and as much state as the rest of the budget holds.
    An image whose tokens alone exceed the budget still runs, over budget.
    """
    model = BYTES_PER_PIXEL[4 if dtype == torch.float32 else 2]
    budget = max_memory if max_memory is not None else available_memory(device) * MEMORY_FRACTION
    height, width = DESCRIPTOR.padded_size(height, width)
    pixels = height * width
    if tile_size is None and model.one_tile * pixels <= budget:
        return max(height, width), None
    left = budget - model.image * pixels
    if tile_size is None:
        side = _side((left - model.state * pixels) / model.tile)
        if side >= MIN_TILE:
            return side, None
        tile_size = min(REPLAY_TILE, max(MIN_TILE, _side(left / 2 / model.tile)))
    state = left - model.tile * (tile_size + 2 * DESCRIPTOR.decoder_halo) ** 2
    if state >= model.state * pixels:
        return tile_size, None
    return tile_size, max(0, int(state / (16 * model.state)))


def plan(
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
    options: Options = DEFAULT_OPTIONS,
    proxy_dtype: torch.dtype | None = None,
) -> Plan:
    """Decide mode and sizes for an image of ``height × width`` pixels from checked
    ``options``; their ``max_memory`` (bytes) replaces the default budget,
    :data:`MEMORY_FRACTION` of the free memory. ``dtype`` is the exact pass's compute dtype,
    ``proxy_dtype`` the fast path's (default: the same)."""
    mode, tile_size, max_memory = options.mode, options.tile_size, options.max_memory
    pixels = math.prod(DESCRIPTOR.padded_size(height, width))
    budget = EXACT_PIXEL_BUDGET.get(device.type, EXACT_PIXEL_BUDGET["cpu"])
    proxy = options.proxy_size or DEFAULT_PROXY_SIZE
    if mode == "auto":
        size = f"{pixels / 1e6:.1f} MP"
        if pixels != height * width:
            size += f" padded ({height * width / 1e6:.1f} MP)"
        if pixels <= budget or max(height, width) <= proxy:
            mode, reason = "exact", f"{size} ≤ {budget / 1e6:.0f} MP exact budget"
        else:
            mode, reason = "fast", f"{size} > {budget / 1e6:.0f} MP exact budget"
        reason += f" on {device.type}"
    else:
        reason = "requested"
    if mode == "exact":
        if max_memory is not None:
            reason += f"; sized for {max_memory / 2**20:.0f} MiB"
        elif tile_size is None:
            reason += f"; tile sized for {MEMORY_FRACTION:.0%} of free {device.type} memory"
        tile, live = exact_sizes(height, width, device, dtype, tile_size, max_memory)
        return Plan(
            "exact", height, width, tile_size=tile, reason=reason, live_tokens=live, dtype=dtype
        )
    return Plan("fast", height, width, proxy_size=proxy, reason=reason, dtype=proxy_dtype or dtype)
