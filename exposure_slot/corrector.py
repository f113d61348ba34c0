"""``ExposureCorrector``: photos in, corrected photos out, in the caller's own types.

A thin wrapper in the spirit of Real-ESRGAN's ``RealESRGANer``, without its gaps: weights
are verified, errors are raised (never swallowed), and large images go through exact
tiling or the fast proxy path of :mod:`exposure_slot.highres` instead of seamed tiles.

The corrector holds the weights, the device and the lock, and dispatches: the options are
checked once (:class:`~exposure_slot.options.Options`), the image converted once each way
(:mod:`exposure_slot.pixels`), and :mod:`exposure_slot.highres` plans and runs the pass.
"""

from __future__ import annotations

import copy
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import highres, pixels
from .descriptor import DESCRIPTOR
from .errors import (
    ExposureSlotError,
    ImageTypeError,
    InvalidImageError,
    OptionError,
    UnsupportedPrecisionError,
)
from .highres import Plan, fast
from .highres.pipeline import Network, network_pass, run
from .network import ExposureSlotNet, NetOutput
from .options import Options
from .strength import blend
from .weights import WeightsInfo, load_manifest, load_weights, save_folder
from .weights.card import card_info, write_card

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


def default_device() -> torch.device:
    """CUDA if available, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


DEVICE_TYPES = ("cpu", "cuda", "mps")
"""Device types a corrector runs on (when this machine has them)."""


def resolve_device(device: str | torch.device | None, what: str = "device") -> torch.device:
    """``device`` as a torch device this machine has (None: :func:`default_device`);
    anything else is an OptionError naming ``what`` and the devices available."""
    if device is None:
        return default_device()
    if not isinstance(device, (str, torch.device)):
        raise OptionError(f"{what} must be a string or torch.device, not {type(device).__name__}")
    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": mps is not None and mps.is_available(),
    }
    here = ", ".join(name for name in DEVICE_TYPES if available[name])
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise OptionError(
            f"{what} {device}: not a supported device, use one of {', '.join(DEVICE_TYPES)} "
            f"(available here: {here})"
        )
    if not available[parsed.type]:
        raise OptionError(
            f"{what} {device}: no such device is available on this machine: use {here}"
        )
    if parsed.type == "cuda" and parsed.index is not None:
        count = torch.cuda.device_count()
        if parsed.index >= count:
            raise OptionError(f"{what} {device}: this machine has {count} CUDA device(s)")
    return parsed


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
    if str(dtype).removeprefix("torch.") not in DESCRIPTOR.precisions:
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


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: CUDA and MPS do not matter here (they
    run float16), a CPU does when it has AVX512-BF16 or AMX instructions. Elsewhere PyTorch
    emulates bfloat16 on CPU, which is slower than float32."""
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_proxy_precision(device: torch.device, dtype: torch.dtype | str | None) -> torch.dtype:
    """The compute dtype of the fast path's proxy pass.

    The dtype asked for, if any; by default the exact pass's dtype, except on a CPU with
    native bfloat16 (:func:`native_bfloat16`): there bfloat16 is much faster than float32
    and visually identical to it (benchmarks/precision.py and benchmarks/fast_gap.py
    measure both). Exact mode stays float32: its contract is the whole-image float32
    answer within 1e-3.
    """
    if dtype is None and native_bfloat16(device):
        return torch.bfloat16
    return resolve_precision(device, dtype)


@dataclass
class SlotMaps:
    """Per-pixel soft slot assignments of the final iteration, one array per level.

    ``native[i]`` is ``K×ceil(H/4)×ceil(W/4)`` (the network's token grid,
    ``DESCRIPTOR.token_grid``); ``levels[i]``
    is the same resized to the input's ``H×W``. Over ``K`` each sums to 1 per pixel.
    """

    native: list[np.ndarray]
    levels: list[np.ndarray]

    def labels(self, level: int = 0) -> np.ndarray:
        """``H×W`` map of the most likely slot of each pixel at ``level`` (0 = main)."""
        return self._level(level).argmax(axis=0).astype(np.int32)

    def overlay(self, image: Any, level: int = 0, alpha: float = 0.5) -> Image.Image:
        """The photo with each pixel tinted by the colour of its slot at ``level``; ``image``
        is the one the maps were made from (its size), ``alpha`` the tint's weight in [0, 1]."""
        from .visualize import overlay_slots

        maps = self._level(level)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise OptionError(f"alpha must be a number from 0 to 1, not {alpha!r}")
        rgb = pixels.to_rgb_float(image)
        if rgb.shape[:2] != maps.shape[1:]:
            raise InvalidImageError(
                f"image is {rgb.shape[1]}×{rgb.shape[0]} but the slot maps were made from a "
                f"{maps.shape[2]}×{maps.shape[1]} image: pass that image"
            )
        return overlay_slots(rgb, maps, alpha=float(alpha))

    def _level(self, level: Any) -> np.ndarray:
        """The maps of ``level``, or an OptionError naming the levels there are."""
        count = len(self.levels)
        if isinstance(level, bool) or not isinstance(level, numbers.Integral):
            raise OptionError(f"level must be an int from 0 to {count - 1}, not {level!r}")
        if not 0 <= level < count:
            raise OptionError(f"level must be from 0 to {count - 1} ({count} levels), not {level}")
        return self.levels[level]


class ExposureCorrector:
    """Corrects exposure of photos with an Exposure-slot network.

    ``weights`` is ``"default"`` (bundled weights), another manifest name, a file, a
    folder, a Hub repo id, a network or a state dict (see :func:`load_weights`).
    ``device`` defaults to CUDA, then MPS, then CPU; ``dtype`` to float16 on CUDA and
    float32 elsewhere, with the fast path's proxy pass in bfloat16 on CPUs that compute it
    natively (``proxy_dtype``, see :func:`resolve_proxy_precision`); a ``dtype`` given is
    used for every pass. One corrector may be shared by threads: the network passes are
    serialised by a lock (input conversion runs concurrently), so each call returns exactly
    what it returns when run alone. On CPU the same input gives bitwise the same output,
    call after call and corrector after corrector with the same weights, at a fixed
    ``torch.get_num_threads()`` (other thread counts may change the last bit).
    ``compile=True`` compiles the network's local stages with ``torch.compile`` (opt-in:
    the first image of each size compiles, which takes a while; see docs/benchmarks.md).
    """

    def __init__(
        self,
        weights: Any = "default",
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        compile: bool = False,
        **hub_kwargs: Any,
    ):
        self.device = resolve_device(device)
        self.dtype = resolve_precision(self.device, dtype)
        self.proxy_dtype = resolve_proxy_precision(self.device, dtype)
        net, self.weights_info = load_weights(weights, **hub_kwargs)
        self.net: ExposureSlotNet = net.eval().set_precision(self.dtype).to(self.device)
        self._proxy_net = self.net
        if self.proxy_dtype != self.dtype:
            self._proxy_net = copy.deepcopy(self.net).set_precision(self.proxy_dtype)
        if not isinstance(compile, bool):
            raise OptionError(f"compile must be True or False, not {compile!r}")
        self.compiled = compile
        if compile:
            self.net.compile_stages()
            if self._proxy_net is not self.net:
                self._proxy_net.compile_stages()
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        compile: bool = False,
        **hub_kwargs: Any,
    ) -> ExposureCorrector:
        """Load from a file, folder, manifest name or Hub repo id (``revision=``,
        ``cache_dir=``, ``token=``, ``local_files_only=``, ``force_download=``; ``manifest=``
        a manifest file of your own for names). Unknown options are an OptionError."""
        return cls(source, device=device, dtype=dtype, compile=compile, **hub_kwargs)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write a Hub-ready folder: ``model.safetensors`` (inference keys, float32),
        ``config.json`` and a model card ``README.md`` stating where the weights came from."""
        folder = save_folder(self.net, folder, dtype=torch.float32)
        info = self.weights_info
        card = card_info(folder, licence=info.licence, source=_card_source(info))
        write_card(folder, card)
        return folder

    @property
    def level(self) -> int:
        """Number of slot levels of the network (2 or 3)."""
        return self.net.config.level

    def __repr__(self) -> str:
        return (
            f"ExposureCorrector(weights={self.weights_info.name!r}, level={self.level}, "
            f"device={self.device.type!r}, dtype={self.dtype}"
            + (f", proxy_dtype={self.proxy_dtype})" if self.proxy_dtype != self.dtype else ")")
        )

    def __call__(
        self,
        image: ImageLike | Sequence[ImageLike],
        *,
        mode: str = "auto",
        tile_size: int | None = None,
        proxy_size: int | None = None,
        max_memory: int | None = None,
        strength: float = 1.0,
        progress: bool = False,
    ) -> Any:
        """Correct one image or a list (tuple) of images, returning the same type(s).

        PIL images keep their mode (alpha passed through; see
        :func:`exposure_slot.pixels.pil_to_float` for palette, CMYK and other modes); numpy
        ``H×W``, ``H×W×1``, ``H×W×3`` and ``H×W×4`` arrays keep layout, dtype and range
        (uint8, uint16, float16, float32, float64); torch ``3×H×W`` or ``B×3×H×W`` float
        tensors stay on their device and dtype. Float input must lie in [0, 1]: values up to
        ``pixel_values.FLOAT_TOLERANCE`` outside are clipped, further ones raise InvalidImageError,
        as do NaN, infinity, empty images and wrong shapes; unsupported types and dtypes raise
        ImageTypeError. A bad list item's error names its index.

        ``mode``: ``"exact"`` gives the whole-image result (tiled in bounded memory when
        large, ``tile_size`` input pixels per tile); ``"fast"`` runs the network on a proxy
        with long side ``proxy_size`` and carries its correction to full resolution;
        ``"auto"`` picks between them, see :meth:`plan`. ``max_memory`` (bytes) is what an
        exact pass plans to use, by default a quarter of the free memory.

        ``strength`` says how much of the correction to apply: 0 returns the image, 1 the
        network's correction, values between a perceptually even step towards it, up to
        :data:`~exposure_slot.options.MAX_STRENGTH` further (see :mod:`exposure_slot.strength`).
        The options are checked once per call (:class:`~exposure_slot.options.Options`).
        """
        options = Options(mode, tile_size, proxy_size, max_memory, strength, progress)
        if not isinstance(image, (list, tuple)):
            return self._correct(image, options)
        results = []
        for index, item in enumerate(image):
            if isinstance(item, (list, tuple)):
                raise ImageTypeError(f"image list item {index} is itself a list or tuple")
            try:
                results.append(self._correct(item, options))
            except ExposureSlotError as exc:
                raise type(exc)(f"image list item {index}: {exc}") from exc
        return results if isinstance(image, list) else tuple(results)

    def plan(
        self,
        image: Any,
        *,
        mode: str = "auto",
        tile_size: int | None = None,
        proxy_size: int | None = None,
        max_memory: int | None = None,
    ) -> Plan:
        """How ``image`` will be processed (mode, tile or proxy size, and why)."""
        return self._plan(image, Options(mode, tile_size, proxy_size, max_memory))

    def slot_maps(
        self, image: Any, *, mode: str = "auto", proxy_size: int | None = None
    ) -> SlotMaps:
        """Slot assignments of the final iteration at every level, for inspection.

        ``native`` maps have the resolution of the network's pass: a quarter of the image,
        or of the proxy when the fast path is used (large images in ``auto`` mode).
        """
        how = self._plan(image, Options(mode, proxy_size=proxy_size))
        batch, _ = pixels.to_batch(image)
        if batch.shape[0] != 1:
            raise OptionError("slot_maps takes one image, not a batch")
        h, w = batch.shape[-2:]
        out = run(how, fast.FloatPhoto(batch.to(self.device)), self._network(how, False))
        ph, pw = out.pass_size
        stride = DESCRIPTOR.token_stride
        grid_h, grid_w = (side // stride for side in DESCRIPTOR.padded_size(ph, pw))
        rows, cols = DESCRIPTOR.token_grid(ph, pw)
        native, levels = [], []
        for attn in out.maps:
            grid = attn[0].float().reshape(-1, grid_h, grid_w)
            native.append(grid[:, :rows, :cols].cpu().numpy())
            full = F.interpolate(grid[None], scale_factor=stride, mode="bilinear")[:, :, :ph, :pw]
            if (ph, pw) != (h, w):
                full = F.interpolate(full, size=(h, w), mode="bilinear", antialias=True)
            levels.append(full[0].cpu().numpy())
        return SlotMaps(native=native, levels=levels)

    def _plan(self, image: Any, options: Options) -> Plan:
        """:func:`exposure_slot.highres.plan` for ``image``'s size, logged."""
        h, w = pixels.image_size(image)
        how = highres.plan(h, w, self.device, self.dtype, options, self.proxy_dtype)
        highres.log.info("exposure-slot: %s", how)
        return how

    def _correct(self, image: Any, options: Options) -> Any:
        """One image: planned, converted once in, corrected, converted once out.

        An 8-bit RGB photo larger than the fast path's proxy stays 8-bit (read and written a
        strip at a time, :class:`~exposure_slot.highres.fast.Uint8Photo`); any other image
        becomes a float batch. A batch the caller does not hold (anything but a tensor) may
        receive the fast path's output in place, unless the blend still needs it.
        """
        how = self._plan(image, options)
        network = self._network(how, options.progress)
        strength = options.strength
        photo = pixels.uint8_rgb(image) if how.mode == "fast" and strength == 1 else None
        if photo is not None and max(photo[0].shape[:2]) > how.proxy_size:
            rgb, restore = photo
            return restore(run(how, fast.Uint8Photo(rgb.to(self.device)), network).image.cpu())
        batch, restore = pixels.to_batch(image)
        full = batch.to(self.device) if how.mode == "fast" else batch
        private = not isinstance(image, torch.Tensor) and strength == 1
        out = run(how, fast.FloatPhoto(full, full if private else None), network).image
        return restore(blend(batch.to(out.device), out, strength))

    def _network(self, how: Plan, progress: bool) -> Network:
        """The network pass ``how`` needs (the proxy's precision in fast mode) on this
        corrector's device, serialised by its lock."""
        net = self._proxy_net if how.mode == "fast" else self.net

        def network(batch: torch.Tensor) -> NetOutput:
            with self._lock, torch.inference_mode():
                return network_pass(net, batch, self.device, how, progress, self.weights_info.name)

        return network


def _card_source(info: WeightsInfo) -> str:
    """Where weights came from, as a model card may say it: no path of this machine."""
    if info.source.startswith("hf://") or info.source == "in memory":
        return info.source
    entry = load_manifest().entries.get(info.name)
    if entry is not None and entry.bundled:
        return f"'{info.name}', bundled with exposure-slot"
    return f"{Path(info.source).name} (a local file)"
