"""In-memory images: PIL / numpy / torch to the network's float batch and back.

Every public entry point validates here, so a bad array gets a clear library error
instead of a traceback from deep inside torch. Files are :mod:`exposure_slot.imageio`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from .errors import ImageTypeError, InvalidImageError

Restore = Callable[[torch.Tensor], Any]

_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_TORCH_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_size(h: int, w: int, what: str) -> None:
    if h < 1 or w < 1:
        raise InvalidImageError(f"{what} is empty ({h}×{w} pixels)")


def _check_finite(x: torch.Tensor | np.ndarray, what: str) -> None:
    finite = torch.isfinite(x).all() if isinstance(x, torch.Tensor) else np.isfinite(x).all()
    if not bool(finite):
        raise InvalidImageError(f"{what} contains NaN or infinite values")


def numpy_to_float(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, Callable]:
    """Split an ``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4`` array into float RGB in
    [0, 1], its alpha (untouched) and a function turning corrected RGB back into the
    input's layout, dtype and range.

    Floats outside [0, 1] are clipped to [0, 1] (documented: the network's range).
    """
    if not isinstance(array, np.ndarray):
        raise ImageTypeError(f"expected a numpy array, got {type(array).__name__}")
    if array.dtype not in _INT_MAX and array.dtype not in _FLOATS:
        raise ImageTypeError(
            f"numpy image dtype {array.dtype} is not supported: use uint8, uint16, float32 "
            "or float64"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InvalidImageError(
            f"numpy image must be H×W, H×W×1, H×W×3 or H×W×4, got shape {array.shape}"
        )
    h, w, channels = array.shape
    _check_size(h, w, f"numpy image of shape {array.shape}")
    dtype, scale = array.dtype, _INT_MAX.get(array.dtype, 1.0)
    if dtype in _FLOATS:
        _check_finite(array, "numpy image")
    colour = array[:, :, :3] if channels >= 3 else np.repeat(array[:, :, :1], 3, axis=2)
    rgb = np.clip(colour.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    alpha = array[:, :, 3:4] if channels == 4 else None

    def restore(out: np.ndarray) -> np.ndarray:
        if channels == 1:
            out = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
        out = np.round(out * scale).astype(dtype) if dtype in _INT_MAX else out.astype(dtype)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
        return out

    return rgb, alpha, restore


def _numpy(array: np.ndarray) -> tuple[torch.Tensor, Restore]:
    was_2d = isinstance(array, np.ndarray) and array.ndim == 2
    rgb, _, restore = numpy_to_float(array)
    batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]

    def back(out: torch.Tensor) -> np.ndarray:
        result = restore(out[0].permute(1, 2, 0).cpu().numpy())
        return result[:, :, 0] if was_2d else result

    return batch, back


def pil_to_float(image: Image.Image) -> tuple[np.ndarray, Callable[[np.ndarray], Image.Image]]:
    """RGB float of a PIL image in any mode, and a function back to a matching mode.

    RGB/RGBA/L/LA/I;16/I/F keep their mode (alpha passed through bit-exact); palette
    images come back as RGB or RGBA (a palette cannot hold the correction); CMYK and
    YCbCr come back as RGB; 1-bit images come back as L.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if mode.startswith("I;16") else (1.0 if mode == "F" else 65535.0)
        gray = np.clip(data / scale, 0, 1).astype(np.float32)

        def back_gray(out: np.ndarray) -> Image.Image:
            lum = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            if mode == "F":
                return Image.fromarray(lum.astype(np.float32), "F")
            values = np.round(lum * scale)
            return Image.fromarray(
                values.astype(np.uint16 if mode.startswith("I;16") else np.int32)
            )

        return np.repeat(gray[:, :, None], 3, axis=2), back_gray
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA"):
        image = image.convert("RGBA" if mode in ("RGBa", "La", "PA") else "RGB")
    elif mode == "1":
        image = image.convert("L")
    array = np.asarray(image)
    rgb, _, restore = numpy_to_float(array)
    out_mode = image.mode

    def back(out: np.ndarray) -> Image.Image:
        result = restore(out)
        if out_mode in ("L",):
            result = result[:, :, 0]
        return Image.fromarray(result, out_mode)

    return rgb, back


def _pil(image: Image.Image) -> tuple[torch.Tensor, Restore]:
    try:
        rgb, back = pil_to_float(image)
    except OSError as exc:
        raise InvalidImageError(f"cannot decode PIL image: {exc}") from exc
    batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return batch, lambda out: back(out[0].permute(1, 2, 0).cpu().numpy())


def _tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, Restore]:
    if tensor.dtype not in _TORCH_FLOATS:
        raise ImageTypeError(
            f"torch image dtype {tensor.dtype} is not supported: use a float tensor in [0, 1]"
        )
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise InvalidImageError(
            f"torch image must be 3×H×W or B×3×H×W, got shape {tuple(tensor.shape)}"
        )
    _check_size(tensor.shape[-2], tensor.shape[-1], f"torch image of shape {tuple(tensor.shape)}")
    if tensor.ndim == 4 and tensor.shape[0] == 0:
        raise InvalidImageError("torch image batch is empty")
    _check_finite(tensor, "torch image")
    batch = tensor.detach().float().clamp(0, 1)
    batch = batch[None] if tensor.ndim == 3 else batch
    device, dtype, single = tensor.device, tensor.dtype, tensor.ndim == 3

    def back(out: torch.Tensor) -> torch.Tensor:
        out = out.to(device=device, dtype=dtype)
        return out[0] if single else out

    return batch, back


def to_batch(image: Any) -> tuple[torch.Tensor, Restore]:
    """A ``B×3×H×W`` float32 batch in [0, 1] (CPU or the tensor's device) and the
    function that turns the corrected batch back into the caller's type."""
    if isinstance(image, Image.Image):
        return _pil(image)
    if isinstance(image, np.ndarray):
        return _numpy(image)
    if isinstance(image, torch.Tensor):
        return _tensor(image)
    if image is None:
        raise ImageTypeError("image is None")
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        raise ImageTypeError(
            f"got a path ({image!r}): read it first with exposure_slot.imageio.read_image, "
            "or use the exposure-slot command line"
        )
    raise ImageTypeError(
        f"unsupported image type {type(image).__name__}: pass a PIL image, a numpy array "
        "or a torch tensor (or a list of them)"
    )


def image_size(image: Any) -> tuple[int, int]:
    """``(height, width)`` of a PIL image, numpy array or torch tensor, without converting."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, (np.ndarray, torch.Tensor)) and image.ndim >= 2:
        dims = image.shape[-2:] if isinstance(image, torch.Tensor) else image.shape[:2]
        return int(dims[0]), int(dims[1])
    to_batch(image)  # raises the right error for anything else
    raise ImageTypeError(f"cannot tell the size of {type(image).__name__}")


def to_rgb_float(image: Any) -> np.ndarray:
    """``H×W×3`` float32 RGB in [0, 1] of a single PIL / numpy / torch image."""
    batch, _ = to_batch(image)
    if batch.shape[0] != 1:
        raise InvalidImageError("expected one image, got a batch")
    return batch[0].permute(1, 2, 0).cpu().numpy()
