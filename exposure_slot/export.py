"""Export a network to ONNX, for apps and runtimes that do not run PyTorch.

The exported graph is one whole-image pass of the network in float32: ``image`` (``B×3×H×W``
RGB in [0, 1], ``H`` and ``W`` multiples of the descriptor's ``size_multiple``, any batch)
in; ``corrected`` (same shape, clipped to [0, 1]) and one soft slot map per level
(``B×K×H/s×W/s`` for the descriptor's ``token_stride`` s, summing to 1 over ``K``) out.
What it does not do, unlike :class:`ExposureCorrector`: pad to the size multiple, exact
tiling or fast mode for large photos, or half precision. Needs the ``onnx`` extra
(``pip install "exposure-slot[onnx]"``).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import __version__
from .errors import ExportError, OptionError
from .extras import require
from .files import atomic_write_bytes
from .network import ExposureSlotNet
from .weights import load_weights

OPSET = 17
"""ONNX opset of the exported graph (ONNX Runtime 1.12 and later run it)."""
INPUT = "image"
OUTPUT = "corrected"


class _Graph(nn.Module):
    """What the ONNX graph computes: the corrected image, clipped, and the slot maps."""

    def __init__(self, net: ExposureSlotNet):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.net(x)
        b, _, h, w = x.shape
        s = self.net.descriptor.token_stride
        maps = [a.reshape(b, a.shape[1], h // s, w // s) for a in out.maps]  # B×K×N -> grid
        return (out.image.clamp(0, 1), *maps)


def map_names(net: ExposureSlotNet) -> list[str]:
    """Output names of the slot maps, one per level: ``slots_level0``, ``slots_level1``..."""
    return [f"slots_level{i}" for i in range(net.config.level)]


def export_onnx(weights: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``weights`` (anything :class:`ExposureCorrector` takes) as an ONNX model.

    Height, width and batch are dynamic. The model's metadata names the weights, their
    sha256 and licence, the size multiple, the opset and this library's version. An existing
    file is only replaced with ``overwrite=True``.
    """
    onnx = require("onnx", "onnx")
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise OptionError(f"{path}: an ONNX model's file name ends in .onnx")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OptionError(f"{path} already exists; not replaced (overwrite=True, --overwrite)")
    net, info = load_weights(weights)
    net = net.eval().float().cpu()
    graph = _Graph(net)
    names = [OUTPUT, *map_names(net)]
    spatial = {0: "batch", 2: "height", 3: "width"}
    dynamic = {INPUT: spatial, OUTPUT: spatial}
    multiple, stride = net.descriptor.size_multiple, net.descriptor.token_stride
    grid = {0: "batch", 2: f"height/{stride}", 3: f"width/{stride}"}
    dynamic |= {name: grid for name in names[1:]}
    example = torch.rand(1, 3, 4 * multiple, 6 * multiple)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on tracing; checked below
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=names,
            dynamic_axes=dynamic,
        )
    model = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "library": f"exposure-slot {__version__}",
        "weights": info.name,
        "weights_sha256": info.sha256 or "unknown",
        "licence": info.licence or "not stated",
        "level": str(net.config.level),
        "slot_counts": ",".join(map(str, net.config.slot_counts)),
        "size_multiple": str(multiple),
        "opset": str(OPSET),
        "input": f"{INPUT}: B×3×H×W float32 RGB in [0, 1]; H and W multiples of {multiple}",
        "outputs": f"{OUTPUT}: B×3×H×W in [0, 1] (clipped); "
        + "; ".join(f"{name}: B×K×H/{stride}×W/{stride} soft slot map" for name in names[1:]),
        "not_included": "padding to the size multiple, exact tiling and fast mode for large "
        "photos, half precision: a whole-image float32 pass",
    }
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OptionError(f"{path} appeared while exporting; not replaced")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, model.SerializeToString())
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
