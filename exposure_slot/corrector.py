"""``ExposureCorrector``: photos in, corrected photos out, in the caller's own types.

A thin wrapper in the spirit of Real-ESRGAN's ``RealESRGANer``, without its gaps: weights
are verified, errors are raised (never swallowed), and large images go through exact
tiling or the fast proxy path of :mod:`exposure_slot.highres` instead of seamed tiles.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import images
from .errors import OptionError, UnsupportedPrecisionError
from .network import ExposureSlotNet, NetOutput
from .weights import load_weights, save_folder

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)

MIN_SIDE = 8
"""Padded inputs are at least this large: the network's reflect-padded convolutions at
1/4 resolution need 2 pixels there."""


def default_device() -> torch.device:
    """CUDA if available, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_precision(device: torch.device, dtype: torch.dtype | str | None) -> torch.dtype:
    """The compute dtype for ``device``: fp16 on CUDA, fp32 elsewhere, unless overridden.

    float16 is refused on CPU (PyTorch's CPU half kernels are slow and partly missing);
    bfloat16 is refused on MPS, which does not support it on every macOS version.
    """
    if isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
                 "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16}  # fmt: skip
        if dtype not in names:
            raise UnsupportedPrecisionError(
                f"unknown dtype '{dtype}': use float32, float16 or bfloat16"
            )
        dtype = names[dtype]
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise UnsupportedPrecisionError(
            f"dtype {dtype} is not supported: use torch.float32, torch.float16 or torch.bfloat16"
        )
    if dtype == torch.float16 and device.type == "cpu":
        raise UnsupportedPrecisionError(
            "float16 is not supported on CPU (slow, incomplete kernels): use torch.bfloat16 "
            "or torch.float32 on CPU, or float16 on CUDA/MPS"
        )
    if dtype == torch.bfloat16 and device.type == "mps":
        raise UnsupportedPrecisionError(
            "bfloat16 is not supported on MPS: use torch.float16 or torch.float32"
        )
    return dtype


def pad_to_multiple(x: torch.Tensor, multiple: int = 4, minimum: int = MIN_SIDE) -> torch.Tensor:
    """Pad right and bottom to a multiple of ``multiple`` (and at least ``minimum``).

    Reflect padding as in the authors' test procedure; replicate where reflect is
    impossible (padding not smaller than the side).
    """
    h, w = x.shape[-2:]
    ph = max(-h % multiple, minimum - h)
    pw = max(-w % multiple, minimum - w)
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


@dataclass
class SlotMaps:
    """Per-pixel soft slot assignments of the final iteration, one array per level.

    ``native[i]`` is ``K×ceil(H/4)×ceil(W/4)`` (the network's own resolution); ``levels[i]``
    is the same resized to the input's ``H×W``. Over ``K`` each sums to 1 per pixel.
    """

    native: list[np.ndarray]
    levels: list[np.ndarray]

    def labels(self, level: int = 0) -> np.ndarray:
        """``H×W`` map of the most likely slot of each pixel at ``level`` (0 = main)."""
        return self.levels[level].argmax(axis=0).astype(np.int32)

    def overlay(self, image: Any, level: int = 0, alpha: float = 0.5) -> Image.Image:
        """The photo with each pixel tinted by the colour of its slot at ``level``."""
        from .visualize import overlay_slots

        return overlay_slots(images.to_rgb_float(image), self.levels[level], alpha=alpha)


class ExposureCorrector:
    """Corrects exposure of photos with an Exposure-slot network.

    ``weights`` is ``"default"`` (bundled weights), another manifest name, a file, a
    folder, a Hub repo id, a network or a state dict (see :func:`load_weights`).
    ``device`` defaults to CUDA, then MPS, then CPU; ``dtype`` to float16 on CUDA and
    float32 elsewhere. One corrector may be shared by threads: calls are serialised.
    """

    def __init__(
        self,
        weights: Any = "default",
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        **hub_kwargs: Any,
    ):
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = resolve_precision(self.device, dtype)
        net, self.weights_info = load_weights(weights, **hub_kwargs)
        self.net: ExposureSlotNet = net.eval().set_precision(self.dtype).to(self.device)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        **hub_kwargs: Any,
    ) -> ExposureCorrector:
        """Load from a file, folder, manifest name or Hub repo id (``revision=``,
        ``cache_dir=``, ``token=``, ``local_files_only=``, ``force_download=``)."""
        return cls(source, device=device, dtype=dtype, **hub_kwargs)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` (inference keys, float32) and ``config.json``."""
        net = self.net
        return save_folder(net, folder, dtype=torch.float32)

    @property
    def level(self) -> int:
        """Number of slot levels of the network (2 or 3)."""
        return self.net.config.level

    def __repr__(self) -> str:
        return (
            f"ExposureCorrector(weights={self.weights_info.name!r}, level={self.level}, "
            f"device={self.device.type!r}, dtype={self.dtype})"
        )

    def __call__(self, image: ImageLike | Sequence[ImageLike], **options: Any) -> Any:
        """Correct one image or a list of images, returning the same type(s).

        PIL images keep their mode (alpha passed through); numpy ``H×W×3`` arrays keep
        dtype and range (uint8, uint16, float32, float64); torch ``3×H×W`` or
        ``B×3×H×W`` float tensors in [0, 1] stay on their device.
        """
        if isinstance(image, list):
            return [self(item, **options) for item in image]
        _check_options(options)
        batch, restore = images.to_batch(image)
        return restore(self._correct_batch(batch))

    def slot_maps(self, image: Any) -> SlotMaps:
        """Slot assignments of the final iteration at every level, for inspection."""
        batch, _ = images.to_batch(image)
        if batch.shape[0] != 1:
            raise OptionError("slot_maps takes one image, not a batch")
        h, w = batch.shape[-2:]
        out = self._run(batch)
        native, levels = [], []
        for attn in out.maps:
            hp, wp = h + (-h % 4), w + (-w % 4)
            padded_h = max(hp, MIN_SIDE) // 4
            padded_w = max(wp, MIN_SIDE) // 4
            grid = attn[0].float().reshape(-1, padded_h, padded_w)
            native.append(grid[:, : -(-h // 4), : -(-w // 4)].cpu().numpy())
            full = F.interpolate(grid[None], scale_factor=4, mode="bilinear", align_corners=False)
            levels.append(full[0, :, :h, :w].cpu().numpy())
        return SlotMaps(native=native, levels=levels)

    def _run(self, batch: torch.Tensor) -> NetOutput:
        """One whole-image pass: pad, forward in the corrector's dtype, crop, clip."""
        h, w = batch.shape[-2:]
        with self._lock, torch.inference_mode():
            x = pad_to_multiple(batch.to(self.device, self.dtype))
            out = self.net(x)
            out.image = out.image[..., :h, :w].float().clamp_(0, 1)
        return out

    def _correct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self._run(batch).image


def _check_options(options: dict[str, Any]) -> None:
    known: set[str] = set()
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}")
