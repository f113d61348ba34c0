"""In-memory pixel adapters: the only converter between user types and network tensors.

A PIL image, numpy array or torch tensor becomes the network's float batch here, once, and
the corrected batch goes back into the caller's type here, once. Everything it takes is
validated here, so a bad array gets a clear library error instead of a traceback from deep
inside torch; the code that runs the network trusts what it gets. Files are
:mod:`exposure_slot.files`'; the facts both share (quantiser, float range, luma, PIL modes)
are :mod:`exposure_slot.pixel_values`'.

Values: integers (uint8, uint16, PIL's 8- and 16-bit modes) are divided by their maximum.
Floats (numpy float16/32/64, torch float tensors, PIL mode 'F') must be finite and lie in
[0, 1]. Values at most :data:`FLOAT_TOLERANCE` outside it (the overshoot of resampling,
sharpening or a colour conversion) are clipped to [0, 1]; anything further is refused with
InvalidImageError, because 0-255 floats or mean/std-normalised tensors would otherwise come
out as a white or black picture without a word.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from .errors import ImageReadError, ImageTypeError, InvalidImageError
from .pixel_values import (
    PIL_MODES,
    WIDE_GRAY_MODES,
    check_float_range,
    luma,
    pil_gray_values,
    to_uint,
)

Restore = Callable[[torch.Tensor], Any]

_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_TORCH_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_size(h: int, w: int, what: str) -> None:
    if h < 1 or w < 1:
        raise InvalidImageError(f"{what} is empty ({h}×{w} pixels)")


def _check_float_values(x: torch.Tensor | np.ndarray, what: str) -> tuple[float, float]:
    """Refuse what :func:`check_float_range` refuses; return the minimum and maximum."""
    if isinstance(x, torch.Tensor):
        lo, hi = (float(v) for v in torch.aminmax(x))
    else:
        lo, hi = float(x.min()), float(x.max())
    check_float_range(lo, hi, what)
    return lo, hi


_BLOCK_ROWS = 32
"""Rows per block in :func:`_to_float`: a block's temporaries stay in the CPU cache."""


def _to_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` (float32, ``H×W×C``, any memory order, e.g. the channels-first network
    output seen as ``H×W×C``) as a C-contiguous array of float ``dtype``, a block of rows at
    a time: on such a view that is faster than numpy's whole-array cast."""
    result = np.empty(values.shape, dtype)
    for top in range(0, values.shape[0], _BLOCK_ROWS):
        result[top : top + _BLOCK_ROWS] = values[top : top + _BLOCK_ROWS]
    return result


def numpy_to_float(
    array: np.ndarray, what: str = "numpy image"
) -> tuple[np.ndarray, np.ndarray | None, Callable]:
    """Split an ``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4`` array into float RGB in
    [0, 1], its alpha (unchanged; float alpha clipped to [0, 1] like the colour) and a
    function turning corrected RGB back into the input's layout, dtype and range.
    ``what`` names the image in error messages.

    uint8 and uint16 are divided by 255 and 65535; floats follow the module's rule
    (in [0, 1], small excursions clipped, larger ones refused). Either byte order is
    accepted and kept.
    """
    if not isinstance(array, np.ndarray):
        raise ImageTypeError(f"expected a numpy array, got {type(array).__name__}")
    array = np.asarray(array)  # a plain ndarray: np.matrix and masked arrays index otherwise
    given = array.dtype
    if not given.isnative:  # '>u2', '>f4' ...: swapped once here, given back in their order
        array = array.astype(given.newbyteorder("="))
    if array.dtype not in _INT_MAX and array.dtype not in _FLOATS:
        raise ImageTypeError(
            f"{what} dtype {given} is not supported: use uint8 or uint16 (e.g. "
            "array.astype(np.uint8) for 0-255 integers), or float16, float32 or float64 in [0, 1]"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        hint = ""
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] > 4:
            hint = " (channels first? use array.transpose(1, 2, 0))"
        raise InvalidImageError(
            f"{what} must be H×W, H×W×1, H×W×3 or H×W×4 (gray, RGB, RGBA), got shape "
            f"{array.shape}{hint}"
        )
    h, w, channels = array.shape
    _check_size(h, w, f"{what} of shape {array.shape}")
    dtype, scale = array.dtype, _INT_MAX.get(array.dtype, 1.0)
    if dtype in _FLOATS:
        _check_float_values(array, f"{what} ({dtype})")
    colour = array[:, :, :3] if channels >= 3 else np.broadcast_to(array[:, :, :1], (h, w, 3))
    # Stored channels first (the network's layout), seen as H×W×3: no transposing copy later.
    planes = np.empty((3, h, w), np.float32)
    np.divide(colour.transpose(2, 0, 1), np.float32(scale), out=planes, dtype=np.float32)
    rgb = planes.transpose(1, 2, 0)
    if dtype in _FLOATS:
        rgb = np.clip(rgb, 0.0, 1.0, out=rgb)
    alpha = array[:, :, 3:4] if channels == 4 else None
    if alpha is not None and dtype in _FLOATS:
        alpha = np.clip(alpha, 0, 1)

    def restore(out: np.ndarray) -> np.ndarray:
        if channels == 1:
            out = luma(out)[:, :, None]
        if dtype in _INT_MAX:
            out = to_uint(out, 8 if dtype == np.uint8 else 16)
        else:
            out = _to_float(out, dtype)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
        return out if out.dtype == given else out.astype(given)

    return rgb, alpha, restore


def _numpy(array: np.ndarray) -> tuple[torch.Tensor, Restore]:
    was_2d = isinstance(array, np.ndarray) and array.ndim == 2
    rgb, _, restore = numpy_to_float(array)
    batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]

    def back(out: torch.Tensor) -> np.ndarray:
        result = restore(out[0].permute(1, 2, 0).cpu().numpy())
        return result[:, :, 0] if was_2d else result

    return batch, back


def _pil_wide_gray(image: Image.Image) -> tuple[np.ndarray, Callable[[np.ndarray], Image.Image]]:
    """'I;16*', 'I' and 'F' (see :func:`pil_gray_values`) to gray RGB, and the way back."""
    mode = image.mode
    _check_size(image.height, image.width, f"PIL image (mode {mode})")
    gray = pil_gray_values(image, "PIL image")

    def back(out: np.ndarray) -> Image.Image:
        lum = luma(out)
        if mode == "F":
            return Image.fromarray(lum)
        values = to_uint(lum, 16)
        return Image.fromarray(values if PIL_MODES[mode] == "I;16" else values.astype(np.int32))

    return np.broadcast_to(gray[:, :, None], (*gray.shape, 3)), back


def pil_to_float(image: Image.Image) -> tuple[np.ndarray, Callable[[np.ndarray], Image.Image]]:
    """RGB float of a PIL image in any mode, and a function back to a matching mode.

    RGB, RGBA, L, LA, I, F and I;16 keep their mode (alpha passed through bit-exact;
    I;16B/L/N come back as I;16); La comes back as LA, RGBa and PA as RGBA; palette
    images as RGB, or RGBA when they have transparency (a palette cannot hold the
    correction); CMYK, YCbCr, LAB, HSV and RGBX as RGB; 1-bit images as L.
    'I' is read as 0-65535 (values outside refused), 'F' as a float image.
    """
    mode = image.mode
    if mode in WIDE_GRAY_MODES:
        return _pil_wide_gray(image)
    target = PIL_MODES.get(mode)
    if mode == "P" and "transparency" in image.info:
        target = "RGBA"
    if target is None:
        raise ImageTypeError(f"PIL image mode {mode!r} is not supported")
    try:
        image = image if target == mode else image.convert(target)
    except ValueError as exc:
        raise ImageTypeError(f"PIL image mode {mode!r} cannot be converted to {target}") from exc
    array = np.asarray(image)
    alpha = array[:, :, 1:] if target == "LA" else None
    rgb, _, restore = numpy_to_float(
        array[:, :, 0] if alpha is not None else array, f"PIL image (mode {mode})"
    )

    def back(out: np.ndarray) -> Image.Image:
        result = restore(out)
        if alpha is not None:
            result = np.concatenate([result, alpha], axis=2)
        return Image.fromarray(result[:, :, 0] if target == "L" else result)

    return rgb, back


def _load(image: Image.Image) -> None:
    """Decode a lazily opened PIL image now, turning failures into ImageReadError."""
    try:
        image.load()  # a lazily opened file decodes here: truncated, corrupt or closed
    except MemoryError:
        raise
    except Exception as exc:
        source = getattr(image, "filename", "") or "a file"
        reason = str(exc) or type(exc).__name__
        if getattr(image, "fp", True) is None:
            reason = "its file was closed before its pixels were read (call image.load() first)"
        raise ImageReadError(f"cannot decode the PIL image read from {source}: {reason}") from exc


def _pil(image: Image.Image) -> tuple[torch.Tensor, Restore]:
    _load(image)
    rgb, back = pil_to_float(image)
    batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return batch, lambda out: back(out[0].permute(1, 2, 0).cpu().numpy())


def _tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, Restore]:
    if tensor.layout != torch.strided or tensor.is_nested or tensor.device.type == "meta":
        raise ImageTypeError(
            "torch image must be a dense tensor holding data, got "
            f"{'a nested tensor' if tensor.is_nested else f'layout {tensor.layout}'} on "
            f"device {tensor.device}"
        )
    if tensor.dtype not in _TORCH_FLOATS:
        raise ImageTypeError(
            f"torch image dtype {tensor.dtype} is not supported: use a float tensor in [0, 1] "
            "(e.g. tensor.float() / 255 for 8-bit values)"
        )
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        hint = " (channels last? use .permute(2, 0, 1))" if tensor.shape[-1:] == (3,) else ""
        raise InvalidImageError(
            f"torch image must be 3×H×W or B×3×H×W, got shape {tuple(tensor.shape)}{hint}"
        )
    _check_size(tensor.shape[-2], tensor.shape[-1], f"torch image of shape {tuple(tensor.shape)}")
    if tensor.ndim == 4 and tensor.shape[0] == 0:
        raise InvalidImageError("torch image batch is empty")
    tensor_data = tensor.detach()
    lo, hi = _check_float_values(tensor_data, f"torch image ({tensor.dtype})")
    # float32 in [0, 1] is used as it is (never written to); else one converted copy
    batch = tensor_data.float()
    if lo < 0 or hi > 1:
        batch = batch.clamp(0, 1) if batch is tensor_data else batch.clamp_(0, 1)
    batch = batch[None] if tensor.ndim == 3 else batch
    device, dtype, single = tensor.device, tensor.dtype, tensor.ndim == 3

    def back(out: torch.Tensor) -> torch.Tensor:
        out = out.to(device=device, dtype=dtype)
        if out.is_inference():  # an inference-mode tensor cannot enter autograd: copy it
            out = out.clone()
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
    if isinstance(image, (bytes, bytearray, memoryview)):
        raise ImageTypeError(
            f"got {memoryview(image).nbytes} bytes, not an image: decode them first, e.g. "
            "PIL.Image.open(io.BytesIO(data))"
        )
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        raise ImageTypeError(
            f"got a path ({str(image)!r}): read it first with exposure_slot.files.read_image "
            "or PIL.Image.open, or use the exposure-slot command line"
        )
    raise ImageTypeError(
        f"unsupported image type {type(image).__name__}: pass a PIL image, a numpy array "
        "or a torch tensor (or a list of them)"
    )


def uint8_rgb(image: Any) -> tuple[torch.Tensor, Restore] | None:
    """An 8-bit RGB photo (an ``H×W×3`` uint8 numpy array, or a PIL image in mode RGB) as an
    ``H×W×3`` uint8 tensor on its pixels (no copy for numpy arrays), and the function that
    turns the corrected ``H×W×3`` uint8 tensor into the caller's type. None for any other
    image: those take :func:`to_batch`. Lets the fast path work in strips without a
    full-size float copy of the photo.
    """
    if isinstance(image, Image.Image) and image.mode == "RGB":
        _load(image)
        array, back = np.asarray(image), lambda out: Image.fromarray(out.numpy())
    elif type(image) is np.ndarray and image.dtype == np.uint8:
        array, back = image, lambda out: out.numpy()
    else:
        return None
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape) < 1:
        return None
    if any(stride < 0 for stride in array.strides):  # torch cannot view reversed axes
        array = np.ascontiguousarray(array)
    with warnings.catch_warnings():  # read-only arrays: the pixels are only read
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array), back


def image_size(image: Any) -> tuple[int, int]:
    """``(height, width)`` of a PIL image, numpy array or torch tensor, without converting."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    nested = isinstance(image, torch.Tensor) and image.is_nested  # has no plain shape
    if isinstance(image, (np.ndarray, torch.Tensor)) and not nested and image.ndim >= 2:
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
