"""Exact tiled inference: the whole-image result with a tile-sized full-resolution working set.

The network is local (convolutions, per-pixel operations) except for a few sums over all
pixels: the slot updates at every iteration and level, and the channel-attention
statistics. The network exposes its attention as a stepwise computation that yields each
partial sum and is sent the total (:func:`exposure_slot.network.drive`). Here the
attention runs on chunks of the 1/4-resolution tokens in lockstep: at every step the
partial sums of all chunks are added (in float64) and the total is sent back to each.

1. Encoder (halo ``DESCRIPTOR.encoder_halo``): the tokens ``c3`` of the image.
2. Attention on token chunks in lockstep; its output replaces the tokens in place.
3. FFN and decoder (halo ``DESCRIPTOR.decoder_halo``).

An image that fits in one tile of ``tile_size`` pixels keeps its encoder features for the
decoder. A larger one runs steps 1 and 3 tile by tile, recomputing the encoder's skip
features in step 3, so the full-resolution working set is one tile. Only tile interiors are
kept: tile borders never reach the result, and image borders are padded exactly as in a
whole-image pass.

Inside a tile, each local stage of the network runs on small stage tiles (:data:`STAGE_TILE`
pixels, grown by the stage's own halo of a few pixels) in channels-last layout. That is where
the speed comes from: whole-image temporaries are large, and on CPU each of them is fresh
memory the kernel must fault in and zero and that no cache holds.

Memory (see :data:`exposure_slot.highres.BYTES_PER_PIXEL`): per image pixel, the tokens
(128 channels at 1/16 of the pixels: 32 bytes in float32) and the attention's per-token
state while step 2 runs, unless it is bounded by ``live_tokens`` (the other chunks are
recomputed at every sum); per tile pixel, the stored stage outputs.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from ..descriptor import DESCRIPTOR
from ..errors import OptionError
from ..network import ExposureSlotNet, NetOutput

CHANNELS_LAST = torch.channels_last

STAGE_TILE = 256
"""Side of a stage tile in input pixels: its temporaries stay small enough to be reused."""

# Halos of the local stages, in input pixels: the receptive field of each stage's
# convolutions (a 3×3 convolution at 1/s resolution reaches s pixels), rounded up to 4.
FULL_HALO = 4  # c1 from x: two 3×3 at full resolution (2)
HALF_HALO = 4  # c2 from c1: one 3×3 at full, one at 1/2 (3)
DEEP_HALO = 8  # c3 from c2: one 3×3 at 1/2, one at 1/4 (6)
UP_HALF_HALO = 12  # u2 from f and c2: FFN and up1 3×3 at 1/4, two 3×3 at 1/2 (12)
UP_FULL_HALO = 4  # output from u2 and c1: one 3×3 at 1/2, two at full (4)

TOKEN_SCALE = DESCRIPTOR.token_stride
"""Scale of the token maps (``c3``, the attention output) against the input."""

TOKENS_PER_CHUNK = 1 << 14
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

    def crop(self, x: Tensor, scale: int = 1) -> Tensor:
        """The region of ``x``, an image at 1/``scale`` resolution."""
        return x[..., self.ry0 // scale : self.ry1 // scale, self.rx0 // scale : self.rx1 // scale]

    def put(self, out: Tensor, y: Tensor, scale: int = 1) -> None:
        """Write the interior of ``y`` (computed over the region) into ``out``."""
        oy, ox = (self.y0 - self.ry0) // scale, (self.x0 - self.rx0) // scale
        th, tw = (self.y1 - self.y0) // scale, (self.x1 - self.x0) // scale
        out[..., self.y0 // scale : self.y1 // scale, self.x0 // scale : self.x1 // scale] = y[
            ..., oy : oy + th, ox : ox + tw
        ]


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


def _local(
    fn: Callable[..., Tensor],
    inputs: Sequence[tuple[Tensor, int]],
    scale: int,
    halo: int,
    layout: torch.memory_format = CHANNELS_LAST,
) -> Tensor:
    """``fn``, a local stage of the network, applied stage tile by stage tile.

    ``inputs`` pairs each input with its scale (1, 2 or 4: full, half or quarter
    resolution); the output has 1/``scale`` resolution, in memory ``layout`` when it is
    assembled from several stage tiles. ``halo`` (input pixels, a multiple of 4) must cover
    the stage's receptive field, so each tile's interior is exact.
    """
    first, first_scale = inputs[0]
    b, h, w = first.shape[0], first.shape[-2] * first_scale, first.shape[-1] * first_scale
    out = None
    for t in tiles(h, w, STAGE_TILE, halo):
        y = fn(*(t.crop(x, s).contiguous(memory_format=CHANNELS_LAST) for x, s in inputs))
        if (t.ry0, t.ry1, t.rx0, t.rx1) == (0, h, 0, w):
            return y
        if out is None:
            size = (b, y.shape[1], h // scale, w // scale)
            out = torch.empty(size, dtype=y.dtype, device=y.device, memory_format=layout)
        t.put(out, y, scale)
    assert out is not None
    return out


def _skips(net: ExposureSlotNet, x: Tensor) -> tuple[Tensor, Tensor]:
    """The encoder's full- and half-resolution features ``c1, c2``."""
    c1 = _local(net.full_features, [(x, 1)], 1, FULL_HALO)
    return c1, _local(net.half_features, [(c1, 1)], 2, HALF_HALO)


def _decode(net: ExposureSlotNet, f: Tensor, c1: Tensor, c2: Tensor, x: Tensor) -> Tensor:
    """FFN and decoder, from the attention output ``f``, the skips and the input; the
    output is assembled in the image's usual (contiguous) layout."""

    def half(f: Tensor, c2: Tensor) -> Tensor:
        return net.decode_half(net.block.feed_forward(f), c2)

    u2 = _local(half, [(f, TOKEN_SCALE), (c2, 2)], 2, UP_HALF_HALO)
    inputs = [(u2, 2), (c1, 1), (x, 1)]
    return _local(net.decode_full, inputs, 1, UP_FULL_HALO, torch.contiguous_format)


def _attend_in_chunks(
    net: ExposureSlotNet, tokens: Tensor, live_tokens: int | None
) -> list[Tensor]:
    """Replace ``tokens`` (``B×D×h×w``) by the block's attention output, in chunks of rows
    run in lockstep so every sum over pixels covers the whole image; return the slot maps
    (``B×K×N`` per level, as a whole-image pass does).

    The first chunks, up to ``live_tokens`` tokens (None: all; at least one chunk), keep
    their attention state between the sums. The others keep none: at every step each is
    replayed from its tokens and the totals so far (the same arithmetic, so the same
    result), which bounds memory by ``live_tokens`` at the cost of attention work growing
    with the square of the steps.
    """
    b, d, h, w = tokens.shape
    rows = max(1, TOKENS_PER_CHUNK // w)
    starts = range(0, h, rows)
    chunks = [tokens[:, :, y : y + rows].permute(0, 2, 3, 1).reshape(b, -1, d) for y in starts]
    n_live = len(chunks) if live_tokens is None else max(1, live_tokens // (rows * w))
    runs = [net.block.attn.steps(chunk) if i < n_live else None for i, chunk in enumerate(chunks)]
    totals: list[Tensor] = []
    maps: list[list[Tensor]] = [[] for _ in chunks]

    def advance(i: int) -> Tensor | None:
        """Chunk ``i``'s next partial sum; None once it is done (output written)."""
        run = runs[i]
        try:
            if run is None:
                run = net.block.attn.steps(chunks[i])
                partial = next(run)
                for total in totals:
                    partial = run.send(total)
                return partial
            return run.send(totals[-1]) if totals else next(run)
        except StopIteration as done:
            out, slots = done.value
            n_rows = chunks[i].shape[1] // w
            y = starts[i]
            tokens[:, :, y : y + n_rows] += out.reshape(b, n_rows, w, d).permute(0, 3, 1, 2)
            maps[i] = slots.maps
            return None

    while True:
        total = None
        for i in range(len(chunks)):
            partial = advance(i)
            if partial is None:
                continue
            total = partial.double() if total is None else total + partial.double()
        if total is None:
            break
        totals.append(total.float())
    return [torch.cat(level_maps, dim=-1) for level_maps in zip(*maps, strict=True)]


def exact_forward(
    net: ExposureSlotNet,
    x: Tensor,
    tile_size: int,
    *,
    live_tokens: int | None = None,
    progress: bool = False,
) -> NetOutput:
    """The network's output for ``x`` (``B×3×H×W``, a size ``net.descriptor.padded_size``
    gives), in tiles of ``tile_size`` input pixels, a positive multiple of
    ``net.descriptor.size_multiple`` (else OptionError); equals ``net(x)`` up to float
    rounding. ``live_tokens`` bounds the tokens whose attention state is kept between the
    sums over pixels (None: all; see :func:`_attend_in_chunks`)."""
    multiple = DESCRIPTOR.size_multiple
    if (
        isinstance(tile_size, bool)
        or not isinstance(tile_size, numbers.Integral)
        or tile_size < 1
        or tile_size % multiple
    ):
        raise OptionError(f"tile_size must be a positive multiple of {multiple}, not {tile_size!r}")
    return forward_tiles(net, x, int(tile_size), live_tokens, progress)


def forward_tiles(
    net: ExposureSlotNet, x: Tensor, tile_size: int, live_tokens: int | None, progress: bool
) -> NetOutput:
    """:func:`exact_forward` with a ``tile_size`` already checked (a plan's)."""
    _, _, h, w = x.shape
    encoder_tiles = list(tiles(h, w, tile_size, DESCRIPTOR.encoder_halo))
    decoder_tiles = list(tiles(h, w, tile_size, DESCRIPTOR.decoder_halo))
    one_tile = len(decoder_tiles) == 1
    steps = 3 if one_tile else len(encoder_tiles) + len(decoder_tiles) + 1
    with tqdm(total=steps, desc="exact", unit="step", disable=not progress) as bar:
        if one_tile:
            c1, c2 = _skips(net, x)
            tokens = _local(net.deep, [(c2, 2)], TOKEN_SCALE, DEEP_HALO)
            bar.update(1)
            maps = _attend_in_chunks(net, tokens, live_tokens)
            bar.update(1)
            out = _decode(net, tokens, c1, c2, x)
            bar.update(1)
            return NetOutput(out, maps)
        size = (x.shape[0], 4 * net.config.width, h // TOKEN_SCALE, w // TOKEN_SCALE)
        tokens = torch.empty(size, dtype=x.dtype, device=x.device, memory_format=CHANNELS_LAST)
        for t in encoder_tiles:
            _, c2 = _skips(net, t.crop(x))
            t.put(tokens, _local(net.deep, [(c2, 2)], TOKEN_SCALE, DEEP_HALO), TOKEN_SCALE)
            bar.update(1)
        maps = _attend_in_chunks(net, tokens, live_tokens)
        bar.update(1)
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        for t in decoder_tiles:
            region = t.crop(x)
            c1, c2 = _skips(net, region)
            t.put(out, _decode(net, t.crop(tokens, TOKEN_SCALE), c1, c2, region))
            bar.update(1)
    return NetOutput(out, maps)
