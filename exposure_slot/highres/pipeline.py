"""Running a :class:`~exposure_slot.highres.Plan` on one image, in either mode.

:func:`network_pass` is the network's pass on a float batch, padded as the authors' test
procedure pads, cropped back and clipped; :func:`run` is the whole path of an image: the
pass itself (exact mode) or the fast path of :func:`exposure_slot.highres.fast.correct`
around a pass on the proxy. The photo comes from :mod:`exposure_slot.pixels`, already
checked: nothing here checks it again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..descriptor import DESCRIPTOR
from ..errors import CompileError, ExposureSlotError, UnsupportedPrecisionError, WeightsError
from ..network import ExposureSlotNet, NetOutput
from . import Plan, fast
from .exact import forward_tiles

Network = Callable[[Tensor], NetOutput]
"""A checked, clipped network pass on a ``B×3×H×W`` float batch (:func:`network_pass` with
the plan's sizes, under the caller's lock)."""


@dataclass
class Result:
    """The corrected image (the photo's kind: a float batch or an ``H×W×3`` uint8 photo),
    the slot maps of the network's pass, and the size that pass ran at (before padding)."""

    image: Tensor
    maps: list[Tensor]
    pass_size: tuple[int, int]


def run(how: Plan, photo: fast.FloatPhoto | fast.Uint8Photo, network: Network) -> Result:
    """Correct ``photo`` as ``how`` says: in fast mode through its proxy, in exact mode
    (a :class:`~exposure_slot.highres.fast.FloatPhoto` only) by the pass itself."""
    if how.mode == "fast":
        image, small, size = fast.correct(photo, how.proxy_size, network)
        return Result(image, small.maps, size)
    out = network(photo.image)
    return Result(out.image, out.maps, photo.size)


def pad_to_multiple(x: Tensor) -> Tensor:
    """Pad right and bottom to the size the network runs at (``DESCRIPTOR.padded_size``).

    Reflect padding as in the authors' test procedure; replicate where reflect is
    impossible (padding not smaller than the side).
    """
    h, w = x.shape[-2:]
    padded_h, padded_w = DESCRIPTOR.padded_size(h, w)
    ph, pw = padded_h - h, padded_w - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def network_pass(
    net: ExposureSlotNet,
    batch: Tensor,
    device: torch.device,
    how: Plan,
    progress: bool,
    weights: str,
) -> NetOutput:
    """``net`` on ``batch`` on ``device``, padded, cropped back and clipped to [0, 1]: a
    contiguous float32 ``B×3×H×W`` batch (the pixel adapters' and the blend's arithmetic
    depends on the layout, so it is always this one).

    Exact mode uses the plan's tile size and kept tokens, fast mode keeps each (proxy) image
    in one tile. The images of a batch go through one at a time: a plan's memory budget is
    for one image. NaN or infinity in the output is an error naming ``weights``.
    """
    h, w = batch.shape[-2:]
    exact = how.mode == "exact"
    image = None
    maps: list[list[Tensor]] = []
    for index in range(batch.shape[0]):
        one = pad_to_multiple(batch[index : index + 1].to(device, net.conv_in.weight.dtype))
        tile_size = how.tile_size if exact else max(one.shape[-2:])
        out = _forward(net, one, tile_size, how.live_tokens if exact else None, progress)
        result = out.image[..., :h, :w].float()
        if not all(math.isfinite(v) for v in torch.aminmax(result)):
            raise _overflow(net, weights)
        if image is None:  # contiguous, whatever layout the stages left
            single = batch.shape[0] == 1 and result.is_contiguous()
            image = (
                result if single else torch.empty(batch.shape, dtype=torch.float32, device=device)
            )
        if image is not result:
            image[index : index + 1] = result
        image[index : index + 1].clamp_(0, 1)
        maps.append(out.maps)
        del one, out, result
    return NetOutput(image, [torch.cat(level) for level in zip(*maps, strict=True)])


def _forward(
    net: ExposureSlotNet, x: Tensor, tile_size: int, live_tokens: int | None, progress: bool
) -> NetOutput:
    """The exact pass on one padded image; a failure of ``torch.compile`` inside it becomes
    a CompileError."""
    try:
        return forward_tiles(net, x, tile_size, live_tokens, progress)
    except Exception as exc:
        if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise CompileError(
            f"torch.compile failed on this machine ({type(exc).__name__}: "
            f"{first_line}); run without compile=True / --compile"
        ) from exc


def _overflow(net: ExposureSlotNet, weights: str) -> ExposureSlotError:
    """The error for a pass that gave NaN or infinity: damaged or out-of-range weights
    in float32, or a range the reduced precision cannot hold."""
    dtype = net.conv_in.weight.dtype
    what = f"the network (weights {weights!r}, {dtype}) gave NaN or infinite "
    if dtype == torch.float32:
        return WeightsError(what + "values: the weights are damaged or out of range")
    return UnsupportedPrecisionError(what + "values: use dtype=torch.float32")
