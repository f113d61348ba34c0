"""What code around the network must know about it, as data (no torch).

Padding, planning, proxy sizing, option checks, slot maps, ONNX export and the spandrel
architecture read :data:`DESCRIPTOR` instead of constants of their own; it imports nothing
heavy, so option checks and the command line's help can use it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    """What code around the network must know about it, in the spirit of spandrel's model
    descriptor: padding, planning, proxy sizing, slot maps, ONNX export and the spandrel
    architecture read these instead of constants of their own. The same for every
    :class:`~exposure_slot.network.NetConfig` (reach it as ``config.descriptor`` or
    ``net.descriptor``)."""

    token_stride: int = 4
    """Input pixels per slot-attention token along each side: two 2× down-samplings. Slot
    maps have this much less resolution than the image."""
    min_side: int = 8
    """Smallest padded side: the reflect-padded convolutions at 1/4 resolution need two
    tokens."""
    precisions: tuple[str, ...] = ("float32", "float16", "bfloat16")
    """Compute dtypes the network runs in, by torch name (see :attr:`float32_islands`)."""
    float32_islands: tuple[str, ...] = ("block.attn.slots", "block.attn.rescale")
    """Submodules and parameters that stay float32 whatever the compute dtype: the slot
    attention sums over every pixel, which half precision cannot hold."""
    exact_tiling: bool = True
    """The network runs tile by tile with the whole-image result (the sums over pixels are
    added across tiles, :mod:`exposure_slot.highres.exact`); tiles cut by a host tool would
    each get a correction of their own, so hosts must not tile it."""
    encoder_halo: int = 12
    """Input pixels the tokens see beyond a tile (11: three 3×3 convolutions at full, two at
    1/2 and one at 1/4 resolution), rounded up to a multiple of :attr:`size_multiple`."""
    decoder_halo: int = 16
    """Input pixels an output pixel depends on through the FFN, the decoder and the skips."""

    @property
    def size_multiple(self) -> int:
        """Each input side must be a multiple of this: a whole number of tokens."""
        return self.token_stride

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the network runs at for an image of ``height × width``: each side
        rounded up to :attr:`size_multiple`, at least :attr:`min_side`. Plans count these
        pixels: a 1-pixel-high strip costs :attr:`min_side` rows."""

        def pad(side: int) -> int:
            return max(side + -side % self.size_multiple, self.min_side)

        return pad(height), pad(width)

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of tokens covering an (unpadded) image of ``height × width``."""
        return -(-height // self.token_stride), -(-width // self.token_stride)


DESCRIPTOR = ModelFacts()
"""The facts of every Exposure-slot network."""
