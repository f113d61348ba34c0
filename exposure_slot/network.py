"""The Exposure-slot network (Jung et al., CVPR 2025), re-implemented.

A U-Net with one transformer block at 1/4 resolution. Inside the block, slot-in-slot
attention clusters the pixels into exposure slots (3 main slots, each refined by a child
level of 7 sub-slots, optionally by a third level of 10), and the learnt per-slot prompts
modulate the values of a channel ("transposed") attention.

Every operation is per pixel or a convolution with a small receptive field, except a few
sums over all pixels (the slot updates and the channel-attention statistics). The attention
is therefore written as a stepwise computation (:data:`Steps`): it yields each partial sum
over the pixels it holds and is sent the total. A whole-image pass answers each partial
with itself (:func:`drive`); :mod:`exposure_slot.highres.exact` runs chunks of the image in
lockstep and answers each with the sum over all chunks.

What code around the network must know about it (size multiple, smallest side, precisions,
float32 islands, tiling) is stated once, in :data:`exposure_slot.descriptor.DESCRIPTOR`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .descriptor import DESCRIPTOR, ModelFacts
from .errors import WeightsError

T = TypeVar("T")
Steps = Generator[Tensor, Tensor, T]
"""A computation that yields each partial sum over its pixels and is sent the total."""


def drive(steps: Steps[T]) -> T:
    """Run a stepwise computation on a whole image: each partial sum is the total."""
    try:
        partial = next(steps)
        while True:
            partial = steps.send(partial)
    except StopIteration as done:
        return done.value


def per_pixel(attn: Tensor, features: Tensor) -> Tensor:
    """``Σ_slots attn ⊙ features``: each pixel's mix of slot features, ``[B, N, D]``.

    ``attn`` is ``[B, K, N]``, ``features`` ``[1 or B, K, D]``. The result is contiguous
    in ``N, D`` order, so the per-pixel products that use it run over memory in order.
    """
    return attn.transpose(1, 2) @ features


@dataclass
class SlotOutput:
    """What one slot level hands to its parent (all per pixel, ``[B, N, D]``)."""

    prompt: Tensor | None
    slot: Tensor | None
    maps: list[Tensor] = field(default_factory=list)


class SlotLevel(nn.Module):
    """Slot attention at one level of the hierarchy, refined by the level below.

    ``slot_counts`` lists the slots of this level and of every level below it, e.g.
    ``(3, 7)`` for the paper's 2-level model and ``(3, 7, 10)`` for the 3-level one.
    """

    def __init__(self, slot_counts: Sequence[int], dim: int = 128, iterations: int = 3):
        super().__init__()
        n = int(slot_counts[0])
        self.iterations = iterations
        self.scale = dim**-0.5
        self.eps = 1e-8
        self.slots_mu = nn.Parameter(torch.randn(1, n, dim))
        self.prompts = nn.Parameter(torch.rand(1, n, dim))
        self.to_q = nn.Linear(dim, dim)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm_k = nn.LayerNorm(dim)
        self.norm_v = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        rest = tuple(slot_counts[1:])
        self.child = SlotLevel(rest, dim, iterations) if rest else None

    def forward(
        self, k: Tensor, v: Tensor, need_prompt: bool = True, need_slot: bool = True
    ) -> SlotOutput:
        """Cluster pixels ``k, v`` ``[B, N, D]`` into slots; return per-pixel features."""
        return drive(self.steps(k, v, need_prompt, need_slot))

    def steps(
        self, k: Tensor, v: Tensor, need_prompt: bool = True, need_slot: bool = True
    ) -> Steps[SlotOutput]:
        """:meth:`forward` as a stepwise computation (see :func:`drive`).

        The child level's two outputs cross over: this level's prompt is modulated by the
        child's *slot* feature, and its slot feature by the child's *prompt*. That is what the
        authors' code computes (it names the child's slot feature ``sub_promptfeature``), so
        their checkpoints need it; it is not a slip. The child's prompt is therefore needed
        only when this level's slot feature is.
        """
        k, v = self.norm_k(k), self.norm_v(v)
        batch, n_slots, dim = k.shape[0], self.slots_mu.shape[1], k.shape[2]
        slots = self.slots_mu.expand(batch, -1, -1)
        child_out = SlotOutput(None, None)
        for _ in range(self.iterations):
            queries = self.to_q(self.norm_slots(slots))
            attn = (torch.einsum("bid,bjd->bij", queries, k) * self.scale).softmax(dim=1)
            attn = attn + self.eps
            sums = yield torch.cat([attn @ v, attn.sum(-1, keepdim=True)], dim=-1)
            updates = sums[..., :dim] / sums[..., dim:]
            slots_prev = slots.reshape(-1, dim)
            slots = self.gru(updates.reshape(-1, dim), slots_prev).view(batch, n_slots, dim)
            if self.child is not None:
                prompt_px = per_pixel(attn, self.prompts)
                k, v = k * prompt_px, v * prompt_px
                # Drop what the child does not need before it runs: in tiled inference
                # every chunk's state is held at once.
                del prompt_px, child_out
                child_out = yield from self.child.steps(k, v, need_slot, True)
            slots = slots + self.mlp(self.norm_mlp(slots))
            if child_out.slot is not None:
                k, v = k * child_out.slot, v * child_out.slot
        prompt = slot = None
        if need_prompt:
            prompt = per_pixel(attn, self.prompts)
            if child_out.slot is not None:
                prompt = prompt * child_out.slot  # crossed on purpose, see above
        if need_slot:
            slot = per_pixel(attn, slots)
            if child_out.prompt is not None:
                slot = slot * child_out.prompt  # crossed on purpose, see above
        return SlotOutput(prompt, slot, [attn, *child_out.maps])


class SlotPromptedAttention(nn.Module):
    """Channel attention whose values are modulated by the slot prompts of each pixel."""

    def __init__(self, slot_counts: Sequence[int], dim: int = 128, iterations: int = 3):
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.rescale = nn.Parameter(torch.ones(1, 1, 1))
        self.proj = nn.Linear(dim, dim)
        self.slots = SlotLevel(slot_counts, dim, iterations)

    def forward(self, x: Tensor, need_slot: bool = False) -> tuple[Tensor, SlotOutput]:
        """``x`` is ``[B, N, D]`` tokens; returns the attention output and the slot output."""
        return drive(self.steps(x, need_slot))

    def steps(self, x: Tensor, need_slot: bool = False) -> Steps[tuple[Tensor, SlotOutput]]:
        """:meth:`forward` as a stepwise computation (see :func:`drive`).

        The slot attention and the sums over pixels run in float32 whatever the dtype of
        ``x``: half precision cannot hold sums over millions of pixels. ``q``, ``k`` and
        ``v`` are computed where they are used rather than kept across the steps: tiled
        inference holds the state of every chunk at once, and this halves it.
        """
        slot_dtype = self.slots.slots_mu.dtype
        k, v = self.to_k(x).to(slot_dtype), self.to_v(x).to(slot_dtype)
        slot_steps = self.slots.steps(k, v, True, need_slot)
        del k, v
        with torch.autocast(x.device.type, enabled=False):
            slots = yield from slot_steps
        stats = yield self._statistics(x)
        dim = x.shape[-1]
        with torch.autocast(x.device.type, enabled=False):
            k_norm = stats[..., dim : dim + 1].sqrt().clamp_min(1e-12)
            q_norm = stats[..., dim + 1].sqrt().clamp_min(1e-12).unsqueeze(1)
            attn = (stats[..., :dim] / (k_norm * q_norm) * self.rescale.float()).softmax(dim=-1)
        v = self.to_v(x)
        v = v * slots.prompt.to(v.dtype)
        out = torch.einsum("bcd,bnd->bnc", attn.to(v.dtype), v)
        return self.proj(out), slots

    def _statistics(self, x: Tensor) -> Tensor:
        """Sums over the pixels of ``x``: ``kᵀq`` and the squared norms of ``k`` and ``q``
        (``[B, D, D + 2]``, float32), from which the channel attention is normalised."""
        q, k = self.to_q(x).float(), self.to_k(x).float()
        with torch.autocast(x.device.type, enabled=False):
            squares = [k.square().sum(1).unsqueeze(-1), q.square().sum(1).unsqueeze(-1)]
            return torch.cat([k.transpose(1, 2) @ q, *squares], dim=-1)


class SlotTransformerBlock(nn.Module):
    """``x + attention(x)``, then ``x + FFN(LayerNorm(x))`` on ``[B, D, H, W]`` maps."""

    def __init__(self, slot_counts: Sequence[int], dim: int = 128, iterations: int = 3):
        super().__init__()
        self.attn = SlotPromptedAttention(slot_counts, dim, iterations)
        self.ffn_norm = nn.LayerNorm(dim)
        hidden = dim * 4
        self.ffn = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )

    def attend(self, x: Tensor, need_slot: bool = False) -> tuple[Tensor, SlotOutput]:
        """The attention half of the block on a whole image."""
        b, d, h, w = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, d)
        out, slots = self.attn(tokens, need_slot)
        return x + out.transpose(1, 2).reshape(b, d, h, w), slots

    def feed_forward(self, x: Tensor) -> Tensor:
        """The convolutional half of the block (3x3 depthwise: needs a 1-pixel halo).

        The 1x1 convolutions run as matrix products on channels-last pixels (faster on
        CPU than PyTorch's 1x1 convolution path); ``self.ffn`` holds their weights.
        """
        expand, _, depthwise, _, shrink = self.ffn
        hidden = F.gelu(F.linear(self.ffn_norm(x.permute(0, 2, 3, 1)), expand.weight.flatten(1)))
        hidden = F.gelu(depthwise(hidden.permute(0, 3, 1, 2)))
        out = F.linear(hidden.permute(0, 2, 3, 1), shrink.weight.flatten(1))
        return x + out.permute(0, 3, 1, 2)


def _down(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False, padding_mode="reflect"),
        nn.PixelUnshuffle(2),
    )


def _up(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False, padding_mode="reflect"),
        nn.PixelShuffle(2),
    )


class SlotDecoder(nn.Module):
    """Training-only head: reconstructs the target from the slot feature map (aux loss)."""

    def __init__(self, dim: int = 128):
        super().__init__()
        half = dim // 2
        self.up1 = _up(dim)
        self.conv1 = nn.Conv2d(half, half, 3, padding=1)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1)
        self.up2 = _up(half)
        self.conv3 = nn.Conv2d(half // 2, half // 2, 3, padding=1)
        self.conv4 = nn.Conv2d(half // 2, half // 4, 3, padding=1)
        self.conv5 = nn.Conv2d(half // 4, 3, 3, padding=1)

    def forward(self, slot_map: Tensor) -> Tensor:
        x = self.up1(slot_map)
        x = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        x = self.up2(x)
        x = F.gelu(self.conv4(F.gelu(self.conv3(x))))
        return self.conv5(x)


@dataclass
class NetOutput:
    """Output of :class:`ExposureSlotNet`: the image, the slot maps and the aux map."""

    image: Tensor
    maps: list[Tensor]
    slot_map: Tensor | None = None


CONFIG_LIMITS = {"levels": (1, 4), "slot_count": (1, 64), "width": (1, 256), "iterations": (1, 16)}
"""Inclusive ranges :class:`NetConfig` accepts: the paper's networks are 2 or 3 levels of
3, 7 and 10 slots, width 32, 3 iterations. Weights outside them are refused before the
network is allocated (a forged shape must not cost gigabytes)."""


@dataclass(frozen=True)
class NetConfig:
    """Hyperparameters of an Exposure-slot network; all are read back from weights.

    Each must be an int within :data:`CONFIG_LIMITS`, else WeightsError naming it.
    """

    slot_counts: tuple[int, ...] = (3, 7)
    width: int = 32
    iterations: int = 3

    def __post_init__(self) -> None:
        counts = self.slot_counts
        if not isinstance(counts, tuple):
            raise WeightsError(f"slot_counts must be a list of ints, not {counts!r}")
        _check_limit("the number of slot levels", len(counts), "levels")
        for count in counts:
            _check_limit("slot_counts", count, "slot_count")
        _check_limit("width", self.width, "width")
        _check_limit("iterations", self.iterations, "iterations")

    @property
    def level(self) -> int:
        """Number of slot levels: 2 for ``(3, 7)``, 3 for ``(3, 7, 10)``."""
        return len(self.slot_counts)

    @property
    def descriptor(self) -> ModelFacts:
        """What code around a network of this configuration must know about it."""
        return DESCRIPTOR

    def to_dict(self) -> dict:
        return {
            "slot_counts": list(self.slot_counts),
            "width": self.width,
            "iterations": self.iterations,
        }


def _check_limit(name: str, value: object, limit: str) -> None:
    low, high = CONFIG_LIMITS[limit]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WeightsError(f"{name} must be an int from {low} to {high}, not {value!r}")


class ExposureSlotNet(nn.Module):
    """The whole network: encoder, slot transformer block at 1/4 size, decoder.

    Input is RGB in [0, 1], ``[B, 3, H, W]`` with ``H`` and ``W`` multiples of
    ``descriptor.size_multiple``; the output is the input plus a predicted residual,
    unclipped.
    """

    def __init__(self, config: NetConfig | None = None, *, slot_decoder: bool = False):
        super().__init__()
        self.config = config = config or NetConfig()
        w = config.width
        self.conv_in = nn.Conv2d(3, w, 3, padding=1)
        self.enc1 = nn.Conv2d(w, w, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(w)
        self.down1 = _down(w)
        self.enc2 = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * w)
        self.down2 = _down(2 * w)
        self.enc3 = nn.Conv2d(4 * w, 4 * w, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(4 * w)
        self.block = SlotTransformerBlock(config.slot_counts, 4 * w, config.iterations)
        self.up1 = _up(4 * w)
        self.dec2a = nn.Conv2d(4 * w, 2 * w, 3, padding=1)
        self.dec2b = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.up2 = _up(2 * w)
        self.dec1a = nn.Conv2d(2 * w, w, 3, padding=1)
        self.dec1b = nn.Conv2d(w, w, 3, padding=1)
        self.head = nn.Conv2d(w, 3, 1)
        self.slot_decoder = SlotDecoder(4 * w) if slot_decoder else None

    @property
    def descriptor(self) -> ModelFacts:
        """What code around the network must know about it (:class:`ModelFacts`)."""
        return self.config.descriptor

    def full_features(self, x: Tensor) -> Tensor:
        """Encoder features at full resolution ``c1`` (a skip input of the decoder)."""
        return self.bn1(self.enc1(F.gelu(self.conv_in(x))))

    def half_features(self, c1: Tensor) -> Tensor:
        """Encoder features at 1/2 resolution ``c2`` (a skip input of the decoder)."""
        return self.bn2(self.enc2(F.gelu(self.down1(c1))))

    def deep(self, c2: Tensor) -> Tensor:
        """Encoder features at 1/4 resolution: the transformer block's tokens."""
        return self.bn3(self.enc3(F.gelu(self.down2(c2))))

    def decode_half(self, f: Tensor, c2: Tensor) -> Tensor:
        """Decoder up to 1/2 resolution, from the block's output ``f`` and the skip ``c2``."""
        u2 = torch.cat([self.up1(f), c2], dim=1)
        return F.gelu(self.dec2b(F.gelu(self.dec2a(u2))))

    def decode_full(self, u2: Tensor, c1: Tensor, x: Tensor) -> Tensor:
        """Decoder at full resolution; adds the global residual to the input ``x``."""
        u1 = torch.cat([self.up2(u2), c1], dim=1)
        u1 = F.gelu(self.dec1b(F.gelu(self.dec1a(u1))))
        return self.head(u1) + x

    def forward(self, x: Tensor) -> NetOutput:
        """A whole-image pass (see :attr:`descriptor` for the sizes ``x`` may have)."""
        need_slot = self.slot_decoder is not None and self.training
        c1 = self.full_features(x)
        c2 = self.half_features(c1)
        c3 = self.deep(c2)
        f, slots = self.block.attend(c3, need_slot)
        u2 = self.decode_half(self.block.feed_forward(f), c2)
        out = NetOutput(self.decode_full(u2, c1, x), slots.maps)
        if need_slot:
            b, d, h, w = c3.shape
            slot_map = slots.slot.transpose(1, 2).reshape(b, d, h, w)
            out.slot_map = self.slot_decoder(slot_map.to(c3.dtype))
        return out

    def compile_stages(self) -> ExposureSlotNet:
        """Compile the local stages (encoder, FFN, decoder) with ``torch.compile``.

        They are per-pixel operations and convolutions that inductor can fuse; the slot
        attention, a stepwise computation over the sums over pixels, stays eager. Each new
        stage-tile shape compiles on first use, so the first image is slow.
        """
        for owner, name in [
            (self, "full_features"),
            (self, "half_features"),
            (self, "deep"),
            (self, "decode_half"),
            (self, "decode_full"),
            (self.block, "feed_forward"),
        ]:
            setattr(owner, name, torch.compile(getattr(owner, name)))
        return self

    def set_precision(self, dtype: torch.dtype) -> ExposureSlotNet:
        """Cast to ``dtype`` but keep the descriptor's float32 islands in float32."""
        self.to(dtype)
        for island in self._islands():
            if isinstance(island, nn.Module):
                island.float()
            else:
                island.data = island.data.float()
        return self

    def islands_intact(self) -> bool:
        """Whether the float32 islands are float32 (a host's ``.half()`` casts them too)."""
        return all(
            tensor.dtype == torch.float32
            for island in self._islands()
            for tensor in (island.parameters() if isinstance(island, nn.Module) else [island])
        )

    def _islands(self) -> list[nn.Module | nn.Parameter]:
        """The submodules and parameters named by ``descriptor.float32_islands``."""
        found = []
        for name in self.descriptor.float32_islands:
            owner, _, attr = name.rpartition(".")
            found.append(getattr(self.get_submodule(owner), attr))
        return found
