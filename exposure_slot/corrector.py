"""``ExposureCorrector``: photos in, corrected photos out, in the caller's own types.

A thin wrapper in the spirit of Real-ESRGAN's ``RealESRGANer``, without its gaps: weights
are verified, errors are raised (never swallowed), and large images go through exact
tiling or the fast proxy path of :mod:`exposure_slot.highres` instead of seamed tiles.
"""

from __future__ import annotations

import copy
import math
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

from . import highres, images
from .errors import (
    CompileError,
    ExposureSlotError,
    ImageTypeError,
    InvalidImageError,
    OptionError,
    UnsupportedPrecisionError,
    WeightsError,
)
from .highres import Plan, fast, padded_size
from .highres.exact import exact_forward
from .network import ExposureSlotNet, NetOutput
from .strength import blend, check_strength
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
    native bfloat16 (:func:`native_bfloat16`): there bfloat16, which takes 0.37-0.40 of
    float32's time, is visually identical to it (benchmarks/precision.py) and moved fast
    mode's distance from exact mode by at most 1 dB on the README's 12 MP photos
    (benchmarks/fast_gap.py). Exact mode stays float32: its contract is the whole-image
    float32 answer within 1e-3.
    """
    if dtype is None and native_bfloat16(device):
        return torch.bfloat16
    return resolve_precision(device, dtype)


def pad_to_multiple(x: torch.Tensor) -> torch.Tensor:
    """Pad right and bottom to :func:`~exposure_slot.highres.padded_size`.

    Reflect padding as in the authors' test procedure; replicate where reflect is
    impossible (padding not smaller than the side).
    """
    h, w = x.shape[-2:]
    ph, pw = (padded - side for padded, side in zip(padded_size(h, w), (h, w), strict=True))
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
        return self._level(level).argmax(axis=0).astype(np.int32)

    def overlay(self, image: Any, level: int = 0, alpha: float = 0.5) -> Image.Image:
        """The photo with each pixel tinted by the colour of its slot at ``level``; ``image``
        is the one the maps were made from (its size), ``alpha`` the tint's weight in [0, 1]."""
        from .visualize import overlay_slots

        maps = self._level(level)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise OptionError(f"alpha must be a number from 0 to 1, not {alpha!r}")
        rgb = images.to_rgb_float(image)
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
    the first image of each size compiles, which takes a while; see the README's figures).
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
        :func:`exposure_slot.images.pil_to_float` for palette, CMYK and other modes); numpy
        ``H×W``, ``H×W×1``, ``H×W×3`` and ``H×W×4`` arrays keep layout, dtype and range
        (uint8, uint16, float16, float32, float64); torch ``3×H×W`` or ``B×3×H×W`` float
        tensors stay on their device and dtype. Float input must lie in [0, 1]: values up to
        ``images.FLOAT_TOLERANCE`` outside are clipped, further ones raise InvalidImageError,
        as do NaN, infinity, empty images and wrong shapes; unsupported types and dtypes raise
        ImageTypeError. A bad list item's error names its index.

        ``mode``: ``"exact"`` gives the whole-image result (tiled in bounded memory when
        large, ``tile_size`` input pixels per tile); ``"fast"`` runs the network on a proxy
        with long side ``proxy_size`` and carries its correction to full resolution;
        ``"auto"`` picks between them, see :meth:`plan`. ``max_memory`` (bytes) is what an
        exact pass plans to use, by default a quarter of the free memory.

        ``strength`` says how much of the correction to apply: 0 returns the image, 1 the
        network's correction, values between a perceptually even step towards it, up to
        :data:`~exposure_slot.strength.MAX_STRENGTH` further (see :mod:`exposure_slot.strength`).
        """
        strength = check_strength(strength)
        if isinstance(image, (list, tuple)):
            options = {
                "mode": mode,
                "tile_size": tile_size,
                "proxy_size": proxy_size,
                "max_memory": max_memory,
                "strength": strength,
            }
            results = []
            for index, item in enumerate(image):
                if isinstance(item, (list, tuple)):
                    raise ImageTypeError(f"image list item {index} is itself a list or tuple")
                try:
                    results.append(self(item, progress=progress, **options))
                except ExposureSlotError as exc:
                    raise type(exc)(f"image list item {index}: {exc}") from exc
            return results if isinstance(image, list) else tuple(results)
        how = self.plan(
            image, mode=mode, tile_size=tile_size, proxy_size=proxy_size, max_memory=max_memory
        )
        photo = images.uint8_rgb(image) if how.mode == "fast" and strength == 1 else None
        if photo is not None and max(photo[0].shape[:2]) > how.proxy_size:
            rgb, restore = photo
            return restore(self._fast_uint8(rgb, how, progress))
        batch, restore = images.to_batch(image)
        # A tensor batch may be the caller's own; any other is a private copy, which the fast
        # path may overwrite unless the blend below still needs it.
        private = not isinstance(image, torch.Tensor) and strength == 1
        out = self._correct(batch, how, progress, overwrite=private).image
        return restore(blend(batch.to(out.device), out, strength))

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
        h, w = images.image_size(image)
        how = highres.plan(
            h, w, self.device, self.dtype, mode, tile_size, proxy_size, max_memory, self.proxy_dtype
        )
        highres.log.info("exposure-slot: %s", how)
        return how

    def slot_maps(
        self, image: Any, *, mode: str = "auto", proxy_size: int | None = None
    ) -> SlotMaps:
        """Slot assignments of the final iteration at every level, for inspection.

        ``native`` maps have the resolution of the network's pass: a quarter of the image,
        or of the proxy when the fast path is used (large images in ``auto`` mode).
        """
        how = self.plan(image, mode=mode, proxy_size=proxy_size)
        batch, _ = images.to_batch(image)
        if batch.shape[0] != 1:
            raise OptionError("slot_maps takes one image, not a batch")
        h, w = batch.shape[-2:]
        out = self._correct(batch, how, progress=False)
        ph, pw = out.pass_size
        native, levels = [], []
        for attn in out.maps:
            grid_h, grid_w = (side // 4 for side in padded_size(ph, pw))
            grid = attn[0].float().reshape(-1, grid_h, grid_w)
            native.append(grid[:, : -(-ph // 4), : -(-pw // 4)].cpu().numpy())
            full = F.interpolate(grid[None], scale_factor=4, mode="bilinear")[:, :, :ph, :pw]
            if (ph, pw) != (h, w):
                full = F.interpolate(full, size=(h, w), mode="bilinear", antialias=True)
            levels.append(full[0].cpu().numpy())
        return SlotMaps(native=native, levels=levels)

    def _correct(
        self, batch: torch.Tensor, how: Plan, progress: bool, overwrite: bool = False
    ) -> _Result:
        """Run the plan on a ``B×3×H×W`` float batch; output cropped and clipped.
        ``overwrite``: the fast path may write its output over ``batch`` (saves a
        full-size buffer)."""
        if how.mode == "fast":
            size = fast.proxy_size(*batch.shape[-2:], long_side=how.proxy_size)
            proxy = fast.downscale(batch, size)
            small = self._network(proxy, None, None, progress, self._proxy_net)
            full = batch.to(small.image.device)
            full = fast.transfer(full, proxy, small.image, out=full if overwrite else None)
            return _Result(full.to(batch.device), small.maps, size)
        out = self._network(batch, how.tile_size, how.live_tokens, progress)
        return _Result(out.image, out.maps, tuple(batch.shape[-2:]))

    def _fast_uint8(self, rgb: torch.Tensor, how: Plan, progress: bool) -> torch.Tensor:
        """The fast path on an ``H×W×3`` uint8 photo, larger than the proxy, in strips: the
        same arithmetic as for its float batch without full-size float copies."""
        size = fast.proxy_size(*rgb.shape[:2], long_side=how.proxy_size)
        proxy = fast.downscale_uint8(rgb, size)
        small = self._network(proxy, None, None, progress, self._proxy_net)
        return fast.transfer_uint8(rgb.to(small.image.device), proxy, small.image).cpu()

    def _network(
        self,
        batch: torch.Tensor,
        tile_size: int | None,
        live_tokens: int | None,
        progress: bool,
        net: ExposureSlotNet | None = None,
    ) -> NetOutput:
        """``net`` (default: the exact pass's) on ``batch`` (padded as the authors do), cropped
        back and clipped; ``tile_size`` None keeps each padded image in one tile;
        ``live_tokens``: see :func:`exposure_slot.highres.exact.exact_forward`. The images
        of a batch go through one at a time: a plan's memory budget is for one image."""
        net = self.net if net is None else net
        h, w = batch.shape[-2:]
        with self._lock, torch.inference_mode():
            image = torch.empty(batch.shape, dtype=torch.float32, device=self.device)
            maps: list[list[torch.Tensor]] = []
            for index in range(batch.shape[0]):
                one = batch[index : index + 1].to(self.device, net.conv_in.weight.dtype)
                out = self._forward(net, pad_to_multiple(one), tile_size, live_tokens, progress)
                result = out.image[..., :h, :w].float()
                if not all(math.isfinite(v) for v in torch.aminmax(result)):
                    raise self._overflow(net)
                image[index : index + 1] = result.clamp_(0, 1)
                maps.append(out.maps)
                del one, out, result
        return NetOutput(image, [torch.cat(level) for level in zip(*maps, strict=True)])

    @staticmethod
    def _forward(
        net: ExposureSlotNet,
        x: torch.Tensor,
        tile_size: int | None,
        live_tokens: int | None,
        progress: bool,
    ) -> NetOutput:
        """:func:`exact_forward` on one padded image; a failure of ``torch.compile`` inside it
        becomes a CompileError."""
        try:
            return exact_forward(
                net, x, tile_size or max(x.shape[-2:]), live_tokens=live_tokens, progress=progress
            )
        except Exception as exc:
            if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise CompileError(
                f"torch.compile failed on this machine ({type(exc).__name__}: "
                f"{first_line}); run without compile=True / --compile"
            ) from exc

    def _overflow(self, net: ExposureSlotNet) -> ExposureSlotError:
        """The error for a pass that gave NaN or infinity: damaged or out-of-range weights
        in float32, or a range the reduced precision cannot hold."""
        dtype = net.conv_in.weight.dtype
        what = f"the network (weights {self.weights_info.name!r}, {dtype}) gave NaN or infinite "
        if dtype == torch.float32:
            return WeightsError(what + "values: the weights are damaged or out of range")
        return UnsupportedPrecisionError(what + "values: use dtype=torch.float32")


def _card_source(info: WeightsInfo) -> str:
    """Where weights came from, as a model card may say it: no path of this machine."""
    if info.source.startswith("hf://") or info.source == "in memory":
        return info.source
    entry = load_manifest().entries.get(info.name)
    if entry is not None and entry.bundled:
        return f"'{info.name}', bundled with exposure-slot"
    return f"{Path(info.source).name} (a local file)"


@dataclass
class _Result:
    image: torch.Tensor
    maps: list[torch.Tensor]
    pass_size: tuple[int, int]
