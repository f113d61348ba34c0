"""Exposure-slot as a spandrel architecture, for tools that load models through spandrel.

chaiNNer, ComfyUI, InvokeAI and others load image models with spandrel's ``ModelLoader``,
which recognises an architecture from the keys of a state dict. After :func:`install`, it
recognises Exposure-slot weights, ours (``model.safetensors``) and the authors' ``.pth``
checkpoints, level 2 and 3::

    import exposure_slot.spandrel
    from spandrel import ModelLoader

    exposure_slot.spandrel.install()
    model = ModelLoader().load_from_file("model.safetensors")
    fixed = model(image)  # 1×3×H×W RGB in [0, 1], any size

Spandrel's descriptor is filled from the network's own
(:data:`exposure_slot.descriptor.DESCRIPTOR`): the size multiple and smallest side a host
pads to, the precisions, and tiling ``INTERNAL``: the network sums over every pixel of the
image (its slots), so tiles cut by a host tool would each get their own, different
correction; the model runs the exact tiled pass of :mod:`exposure_slot.highres.exact`
itself, in bounded memory. Needs the ``spandrel`` extra
(``pip install "exposure-slot[spandrel]"``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import WeightsError
from .extras import require
from .highres import plan
from .highres.exact import exact_forward
from .network import ExposureSlotNet
from .options import Options
from .weights.convert import build_network, detect_format

_spandrel = require("spandrel", "spandrel")

ARCH_ID = "ExposureSlot"


def _detect(state_dict: _spandrel.StateDict) -> bool:
    try:
        detect_format(state_dict)
    except WeightsError:
        return False
    return True


def _call(net: ExposureSlotNet, x: Tensor) -> Tensor:
    """The exact, tiled pass over a padded ``1×3×H×W`` batch in the model's dtype."""
    if not net.islands_intact():
        net.set_precision(x.dtype)  # a host's .half()/.to() cast the float32 islands too
    h, w = x.shape[-2:]
    how = plan(h, w, x.device, x.dtype, Options(mode="exact"))
    with torch.inference_mode():
        out = exact_forward(net, x, how.tile_size, live_tokens=how.live_tokens)
    return out.image


class ExposureSlotArch(_spandrel.Architecture[ExposureSlotNet]):
    """Detects Exposure-slot state dicts (our keys or the authors') and loads them."""

    def __init__(self) -> None:
        super().__init__(id=ARCH_ID, name="Exposure-slot", detect=_detect)

    def load(self, state_dict: _spandrel.StateDict) -> _spandrel.ImageModelDescriptor:
        net = build_network(state_dict)
        config, facts = net.config, net.descriptor
        tiling = _spandrel.ModelTiling
        return _spandrel.ImageModelDescriptor(
            net,
            net.state_dict(),  # in our key names: spandrel loads it into the network
            architecture=self,
            purpose="Restoration",
            tags=[f"level {config.level}", f"{config.width}nf"],
            supports_half="float16" in facts.precisions,
            supports_bfloat16="bfloat16" in facts.precisions,
            scale=1,
            input_channels=3,
            output_channels=3,
            size_requirements=_spandrel.SizeRequirements(
                minimum=facts.min_side, multiple_of=facts.size_multiple
            ),
            tiling=tiling.INTERNAL if facts.exact_tiling else tiling.DISCOURAGED,
            call_fn=_call,
        )


def install(registry: _spandrel.ArchRegistry | None = None) -> None:
    """Add the architecture to ``registry`` (default: spandrel's main registry); once."""
    registry = _spandrel.MAIN_REGISTRY if registry is None else registry
    registry.add(
        _spandrel.ArchSupport.from_architecture(ExposureSlotArch()), ignore_duplicates=True
    )
