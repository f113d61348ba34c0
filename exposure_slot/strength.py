"""How much of the correction to apply: a blend of the photo and its correction in Oklab.

``strength`` 0 gives the photo back, 1 the network's correction, values in between a
perceptually even step between them, and values above 1 (up to
:data:`exposure_slot.options.MAX_STRENGTH`) go further in the same direction. The blend runs
in Oklab (Ottosson 2020), where equal steps of lightness look equal and hue and chroma are
axes of their own: a half-strength result looks halfway between the photo and its correction
in lightness, its colour between theirs.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Oklab's two matrices: linear sRGB -> cone responses, cube-rooted responses -> Lab.
_LMS = torch.tensor(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LAB = torch.tensor(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


_RGB_FROM_LMS = torch.linalg.inv(_LMS.double()).float()
_LMS_FROM_LAB = torch.linalg.inv(_LAB.double()).float()
ROWS = 256
"""Rows blended at a time, so that a large photo needs no full-size temporaries."""


def srgb_to_linear(x: Tensor) -> Tensor:
    """The sRGB transfer function undone (IEC 61966-2-1)."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """The sRGB transfer function (IEC 61966-2-1)."""
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0) ** (1 / 2.4) - 0.055)


def _channels(matrix: Tensor, x: Tensor) -> Tensor:
    """``matrix @ pixel`` for every pixel of a ``B×3×H×W`` tensor."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)


def srgb_to_oklab(rgb: Tensor) -> Tensor:
    """``B×3×H×W`` sRGB in [0, 1] -> Oklab ``L, a, b``."""
    lms = _channels(_LMS, srgb_to_linear(rgb.clamp(0, 1)))
    return _channels(_LAB, lms.clamp(min=0) ** (1 / 3))


def oklab_to_srgb(lab: Tensor) -> Tensor:
    """Oklab ``L, a, b`` -> ``B×3×H×W`` sRGB, clipped to [0, 1]."""
    lms = _channels(_LMS_FROM_LAB, lab) ** 3
    rgb = _channels(_RGB_FROM_LMS, lms)
    return linear_to_srgb(rgb.clamp(0, 1)).clamp(0, 1)


def blend(original: Tensor, corrected: Tensor, strength: float) -> Tensor:
    """``original`` moved ``strength`` of the way to ``corrected`` in Oklab (``B×3×H×W``
    sRGB in [0, 1]); 0 and 1 return the inputs themselves."""
    if strength == 1:
        return corrected
    if strength == 0:
        return original
    out = torch.empty_like(corrected)
    for top in range(0, corrected.shape[-2], ROWS):
        rows = slice(top, top + ROWS)
        start = srgb_to_oklab(original[..., rows, :].float())
        step = srgb_to_oklab(corrected[..., rows, :].float()) - start
        out[..., rows, :] = oklab_to_srgb(start + strength * step)
    return out
