"""Exact tiled inference: the whole-image result with a tile-sized full-resolution working set.

The network is local (convolutions, per-pixel operations) except for a few sums over all
pixels: the slot updates at every iteration and level, and the channel-attention
statistics. The network exposes its attention as a stepwise computation that yields each
partial sum and is sent the total (:func:`exposure_slot.network.drive`). Here the
attention runs on chunks of the 1/4-resolution tokens in lockstep: at every step the
partial sums of all chunks are added (in float64) and the total is sent back to each.

1. Encoder, tile by tile (halo :data:`ENCODER_HALO`): the tokens ``c3`` of the image.
2. Attention on token chunks in lockstep; its output replaces the tokens in place.
3. FFN and decoder, tile by tile (halo :data:`DECODER_HALO`), recomputing the encoder's
   skip features for the tile. Only tile interiors are kept, so tile borders never reach
   the result, and image borders are padded exactly as in a whole-image pass.

Memory: the 1/4-resolution tokens (128 channels: 32 bytes per input pixel in float32), the
attention's per-token state while step 2 runs (about 4 times that), and one tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from ..network import ExposureSlotNet, NetOutput, SlotOutput

ENCODER_HALO = 12
"""Input pixels the tokens see beyond a tile (11: three 3×3 convolutions at full, two at
1/2 and one at 1/4 resolution), rounded up to a multiple of 4."""

DECODER_HALO = 16
"""Input pixels an output pixel depends on through the FFN, the decoder and the skips."""

TOKENS_PER_CHUNK = 1 << 16
"""Tokens per attention chunk: bounds the size of single tensors, not the total."""


@dataclass(frozen=True)
class Tile:
    """A tile's interior ``[y0, y1) × [x0, x1)`` and the region computed for it."""

    y0: int
    y1: int
    x0: int
    x1: int
    ry0: int
    ry1: int
    rx0: int
    rx1: int


def tiles(height: int, width: int, size: int, halo: int) -> Iterator[Tile]:
    """Tiles of ``size`` (a multiple of 4) covering the image, each grown by ``halo``."""
    for y0 in range(0, height, size):
        for x0 in range(0, width, size):
            y1, x1 = min(y0 + size, height), min(x0 + size, width)
            yield Tile(
                y0, y1, x0, x1,
                max(0, y0 - halo), min(height, y1 + halo),
                max(0, x0 - halo), min(width, x1 + halo),
            )  # fmt: skip


def _tokens(net: ExposureSlotNet, x: Tensor, size: int, bar: tqdm) -> Tensor:
    """The block's input ``c3`` for the whole image, computed tile by tile."""
    _, _, h, w = x.shape
    store = None
    for t in tiles(h, w, size, ENCODER_HALO):
        _, c2 = net.skips(x[:, :, t.ry0 : t.ry1, t.rx0 : t.rx1])
        c3 = net.deep(c2)
        if store is None:
            store = c3.new_empty(x.shape[0], c3.shape[1], h // 4, w // 4)
        oy, ox = (t.y0 - t.ry0) // 4, (t.x0 - t.rx0) // 4
        store[:, :, t.y0 // 4 : t.y1 // 4, t.x0 // 4 : t.x1 // 4] = c3[
            :, :, oy : oy + (t.y1 - t.y0) // 4, ox : ox + (t.x1 - t.x0) // 4
        ]
        bar.update(1)
    assert store is not None
    return store


def _attend_in_chunks(net: ExposureSlotNet, tokens: Tensor) -> list[Tensor]:
    """Replace ``tokens`` (``B×D×h×w``) by the block's attention output, in chunks of rows
    run in lockstep so every sum over pixels covers the whole image; return the slot maps
    (``B×K×N`` per level, as a whole-image pass does)."""
    b, d, h, w = tokens.shape
    rows = max(1, TOKENS_PER_CHUNK // w)
    starts = range(0, h, rows)
    chunks = [tokens[:, :, y : y + rows].permute(0, 2, 3, 1).reshape(b, -1, d) for y in starts]
    runs = [net.block.attn.steps(chunk) for chunk in chunks]
    partials = [next(run) for run in runs]
    results: list[tuple[Tensor, SlotOutput]] = []
    while not results:
        total = torch.stack([p.double() for p in partials]).sum(0).float()
        sent = []
        for run in runs:
            try:
                sent.append(run.send(total))
            except StopIteration as done:
                results.append(done.value)
        partials = sent
    for y, chunk, (out, _) in zip(starts, chunks, results, strict=True):
        n_rows = chunk.shape[1] // w
        tokens[:, :, y : y + n_rows] += out.reshape(b, n_rows, w, d).permute(0, 3, 1, 2)
    levels = zip(*(slots.maps for _, slots in results), strict=True)
    return [torch.cat(chunk_maps, dim=-1) for chunk_maps in levels]


def exact_forward(
    net: ExposureSlotNet,
    x: Tensor,
    tile_size: int,
    *,
    progress: bool = False,
) -> NetOutput:
    """The network's output for ``x`` (``B×3×H×W``, sides multiples of 4 and ≥ 8),
    computed in tiles of ``tile_size`` input pixels; equals ``net(x)`` up to float
    rounding. Images that fit in one tile take a single whole-image pass."""
    _, _, h, w = x.shape
    if tile_size % 4:
        raise ValueError("tile_size must be a multiple of 4")
    if h <= tile_size and w <= tile_size:
        return net(x)
    n_tiles = len(list(tiles(h, w, tile_size, 0)))
    with tqdm(total=2 * n_tiles + 1, desc="exact", unit="step", disable=not progress) as bar:
        features = _tokens(net, x, tile_size, bar)
        maps = _attend_in_chunks(net, features)
        bar.update(1)
        out = torch.empty_like(x)
        for t in tiles(h, w, tile_size, DECODER_HALO):
            region = x[:, :, t.ry0 : t.ry1, t.rx0 : t.rx1]
            c1, c2 = net.skips(region)
            f = features[:, :, t.ry0 // 4 : t.ry1 // 4, t.rx0 // 4 : t.rx1 // 4]
            y = net.decode(net.block.feed_forward(f), c1, c2, region)
            oy, ox = t.y0 - t.ry0, t.x0 - t.rx0
            out[:, :, t.y0 : t.y1, t.x0 : t.x1] = y[
                :, :, oy : oy + t.y1 - t.y0, ox : ox + t.x1 - t.x0
            ]
            bar.update(1)
    return NetOutput(out, maps)
