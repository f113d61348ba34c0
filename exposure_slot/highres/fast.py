"""Fast mode for high-resolution photos: correct a small proxy, transfer the correction.

The exposure network is expensive and its cost grows with the pixel count, so for a 12-24 MP
photo we run it on a proxy whose long side is about 1024 pixels and carry its correction back
to the full-resolution photo. Upsampling the corrected proxy would lose all detail, and
upsampling a gain map (output / input) makes halos wherever the correction changes across an
edge. Instead we fit, in every local window of the proxy, an affine colour transform
``out ≈ A·in + b`` (a colour guided filter whose guide is the proxy input), smooth the
coefficients, upsample them bilinearly and apply them to the full-resolution input. The
coefficients are smooth, the full-resolution input carries the edges and the texture, so
detail is kept and the correction follows edges instead of bleeding across them.

The fit is done on square-root values: exposure corrections are close to power laws
(``out = in ** gamma``), which are much closer to affine in the square-root domain than in
the linear one, so the local fit leaves a smaller residual at edges and in gradients.

Images are float torch tensors in [0, 1] of shape (3, H, W) or (N, 3, H, W), on any device.
Coefficients are (N, 12, h, w): channels 0-8 are A row by row (output channel c uses
``A[3c:3c+3]``), channels 9-11 are b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from exposure_slot.errors import ImageTypeError, InvalidImageError, OptionError

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_RADIUS",
    "apply_affine",
    "downscale",
    "fit_local_affine",
    "proxy_size",
    "transfer",
]

DEFAULT_RADIUS = 8
"""Window radius of the local fit, in proxy pixels (17x17 windows at a 1024 px long side)."""

DEFAULT_EPS = 1e-4
"""Ridge regularisation of the 3x3 colour covariance, in squared square-root units."""

_PRIOR_DELTA = 0.05
"""Offset of the gain prior: the ridge term pulls each diagonal coefficient towards the
window's mean gain ``(out + delta) / (in + delta)`` instead of towards zero, so flat or
nearly black windows get a plain gain rather than a flattened output."""
_STRIP_PIXELS = 1 << 18
"""Full-resolution pixels per strip in apply_affine; bounds its temporaries (12 MB each)."""


def proxy_size(h: int, w: int, long_side: int = 1024, multiple: int = 4) -> tuple[int, int]:
    """Return the (height, width) of the proxy on which the network runs.

    The long side becomes ``long_side`` and both sides are rounded to a multiple of
    ``multiple`` (what the network's down-sampling stages want). Nothing is ever upscaled:
    an image whose long side is at most ``long_side`` keeps its size, and a side shorter
    than ``multiple`` keeps its length.
    """
    for name, value, low in (("h", h, 1), ("w", w, 1), ("long_side", long_side, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise OptionError(f"proxy_size: {name} must be a positive int, got {value!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise OptionError(f"proxy_size: multiple must be a positive int, got {multiple!r}")
    if max(h, w) <= long_side:
        return h, w
    scale = long_side / max(h, w)

    def side(n: int) -> int:
        if n < multiple:
            return n
        rounded = max(1, round(n * scale / multiple)) * multiple
        return min(rounded, n // multiple * multiple)

    return side(h), side(w)


def downscale(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average ``img`` down to ``size`` = (height, width); antialiased, never upscales.

    Area averaging is the right prefilter here: each proxy pixel is the mean of the
    full-resolution pixels it covers, the same quantity the local fit compares against.
    """
    x, batched = _as_batch(img, "img")
    h, w = size
    if not (0 < h <= x.shape[-2] and 0 < w <= x.shape[-1]):
        raise OptionError(
            f"downscale: size {tuple(size)} must be positive and at most the image size "
            f"{tuple(x.shape[-2:])}"
        )
    if (h, w) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=(h, w), mode="area")
    return x if batched else x[0]


def fit_local_affine(
    proxy_in: torch.Tensor,
    proxy_out: torch.Tensor,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """Fit per-pixel affine colour transforms ``out ≈ A·in + b`` in local windows.

    This is the colour guided filter of He et al. with the proxy input as guide: in every
    (2·radius+1)² window it solves the ridge regression ``(Σ_in + eps·I) aᶜ = cov(in, outᶜ)``
    for each output channel c, then box-averages the coefficients of all windows covering a
    pixel. Values are fitted on square roots (see the module docstring). Returns
    (N, 12, h, w) coefficients, float32 (float64 for float64 inputs).
    """
    guide, batched = _as_batch(proxy_in, "proxy_in")
    target, _ = _as_batch(proxy_out, "proxy_out")
    if guide.shape != target.shape:
        raise InvalidImageError(
            f"fit_local_affine: proxy_in {tuple(guide.shape)} and proxy_out "
            f"{tuple(target.shape)} must have the same shape"
        )
    _check_fit_options(radius, eps)
    dtype = torch.float64 if guide.dtype == torch.float64 else torch.float32
    guide = _encode(guide.to(dtype))
    target = _encode(target.to(dtype))
    result = _solve(guide, target, radius, eps)
    return result if batched else result[0]


def _solve(guide: torch.Tensor, target: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Ridge-regularised local affine fit (with the gain prior), box-averaged coefficients."""
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    products = [guide[:, i] * guide[:, j] for i, j in pairs]
    products += [target[:, c] * guide[:, i] for c in range(3) for i in range(3)]
    means = _box(torch.cat([guide, target, torch.stack(products, 1)], 1), radius)
    mean_in, mean_out = means[:, 0:3], means[:, 3:6]
    second = means[:, 6:12]
    cross = means[:, 12:21]

    cov = {}
    for k, (i, j) in enumerate(pairs):
        cov[i, j] = second[:, k] - mean_in[:, i] * mean_in[:, j]
        if i == j:
            cov[i, j] = cov[i, j] + eps
        cov[j, i] = cov[i, j]
    inverse = _inverse_sym3(cov)

    coeffs = []
    for c in range(3):
        rhs = [cross[:, 3 * c + i] - mean_out[:, c] * mean_in[:, i] for i in range(3)]
        rhs[c] = rhs[c] + eps * (mean_out[:, c] + _PRIOR_DELTA) / (mean_in[:, c] + _PRIOR_DELTA)
        coeffs += [sum(inverse[i, k] * rhs[k] for k in range(3)) for i in range(3)]
    offsets = [
        mean_out[:, c] - sum(coeffs[3 * c + i] * mean_in[:, i] for i in range(3)) for c in range(3)
    ]
    return _box(torch.stack(coeffs + offsets, 1), radius)


def apply_affine(
    full_in: torch.Tensor, coeffs: torch.Tensor, *, strip_rows: int | None = None
) -> torch.Tensor:
    """Apply proxy coefficients to the full-resolution input; returns the clipped output.

    The coefficients are upsampled bilinearly (pixel-centre aligned, like
    ``F.interpolate(align_corners=False)``; across the width first, on the few coefficient
    rows a strip needs, then between rows by a small matrix product) and applied per pixel.
    Work is done in horizontal strips of ``strip_rows`` rows (default: about a quarter
    megapixel), so the temporary memory is O(strip) and the only full-size tensors are the
    input and the output. The output has the dtype of ``full_in``.
    """
    image, batched = _as_batch(full_in, "full_in")
    if not (isinstance(coeffs, torch.Tensor) and coeffs.is_floating_point()):
        raise ImageTypeError(f"apply_affine: coeffs must be a float tensor, got {type(coeffs)}")
    grid = coeffs if coeffs.dim() == 4 else coeffs.unsqueeze(0)
    if grid.dim() != 4 or grid.shape[:2] != (image.shape[0], 12):
        raise InvalidImageError(
            f"apply_affine: coeffs of shape {tuple(coeffs.shape)} do not match an image batch "
            f"of {image.shape[0]}: expected (N, 12, h, w) from fit_local_affine"
        )
    height, width = image.shape[-2:]
    if strip_rows is None:
        strip_rows = max(1, _STRIP_PIXELS // width)
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1:
        raise OptionError(f"apply_affine: strip_rows must be a positive int, got {strip_rows!r}")

    grid = grid.to(image.device)
    rows0, rows1, row_weight = _linear_taps(grid.shape[-2], height, image.device, grid.dtype)
    first, last = rows0.tolist(), rows1.tolist()
    out = torch.empty_like(image)
    for top in range(0, height, strip_rows):
        rows = slice(top, min(top + strip_rows, height))
        g0, g1 = first[rows.start], last[rows.stop - 1] + 1
        wide = F.interpolate(grid[:, :, g0:g1], size=(g1 - g0, width), mode="bilinear")
        band = torch.matmul(
            _blend_matrix(rows0[rows] - g0, rows1[rows] - g0, row_weight[rows], g1 - g0), wide
        )
        strip = _encode(image[:, :, rows].to(grid.dtype))
        for c in range(3):
            value = band[:, 9 + c].addcmul(band[:, 3 * c], strip[:, 0])
            value.addcmul_(band[:, 3 * c + 1], strip[:, 1]).addcmul_(
                band[:, 3 * c + 2], strip[:, 2]
            )
            out[:, c, rows] = _decode(value)
    return out if batched else out[0]


def transfer(
    full_in: torch.Tensor,
    proxy_in: torch.Tensor,
    proxy_out: torch.Tensor,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """Carry the correction ``proxy_in -> proxy_out`` over to ``full_in``, clipped to [0, 1].

    ``proxy_in`` should be ``downscale(full_in, proxy_size(...))``. When the proxy already has
    the full resolution, ``proxy_out`` is the exact answer and is returned (clipped) as is.
    """
    image, batched = _as_batch(full_in, "full_in")
    small, _ = _as_batch(proxy_in, "proxy_in")
    if small.shape[:2] != image.shape[:2]:
        raise InvalidImageError(
            f"transfer: proxy_in {tuple(proxy_in.shape)} does not belong to full_in "
            f"{tuple(full_in.shape)} (batch or channels differ)"
        )
    if small.shape[-2] > image.shape[-2] or small.shape[-1] > image.shape[-1]:
        raise InvalidImageError(
            f"transfer: proxy_in {tuple(proxy_in.shape)} is larger than full_in "
            f"{tuple(full_in.shape)}"
        )
    if small.shape == image.shape:
        _check_fit_options(radius, eps)
        result, _ = _as_batch(proxy_out, "proxy_out")
        if result.shape != image.shape:
            raise InvalidImageError(
                f"transfer: proxy_out {tuple(proxy_out.shape)} must match proxy_in "
                f"{tuple(proxy_in.shape)}"
            )
        result = result.to(image.dtype).clamp(0, 1)
    else:
        coeffs = fit_local_affine(small, _as_batch(proxy_out, "proxy_out")[0], radius, eps)
        result = apply_affine(image, coeffs)
    return result if batched else result[0]


def _as_batch(img: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``img`` as (N, 3, H, W) and whether it already had a batch dimension."""
    if not isinstance(img, torch.Tensor):
        raise ImageTypeError(f"{name} must be a torch.Tensor, got {type(img).__name__}")
    if not img.is_floating_point():
        raise ImageTypeError(f"{name} must be a float tensor in [0, 1], got dtype {img.dtype}")
    if img.dim() not in (3, 4) or img.shape[-3] != 3:
        raise InvalidImageError(
            f"{name} must have shape (3, H, W) or (N, 3, H, W), got {tuple(img.shape)}"
        )
    if img.numel() == 0:
        raise InvalidImageError(f"{name} is empty: shape {tuple(img.shape)}")
    return (img, True) if img.dim() == 4 else (img.unsqueeze(0), False)


def _check_fit_options(radius: int, eps: float) -> None:
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise OptionError(f"radius must be a positive int (proxy pixels), got {radius!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise OptionError(f"eps must be a positive number, got {eps!r}")


def _encode(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] values to the fitting domain (square root)."""
    return x.clamp(min=0).sqrt()


def _decode(y: torch.Tensor) -> torch.Tensor:
    """Map fitting-domain values back to [0, 1]."""
    return y.clamp(0, 1).square()


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over (2·radius+1)² windows, shrunk at the borders.

    Separable sums by depthwise convolutions in channels-last layout (on CPU several
    times faster than average pooling), divided by the number of pixels in each window.
    """
    channels, (h, w) = x.shape[1], x.shape[-2:]
    k = 2 * radius + 1
    x = x.contiguous(memory_format=torch.channels_last)
    sums = F.conv2d(x, x.new_ones(channels, 1, 1, k), padding=(0, radius), groups=channels)
    sums = F.conv2d(sums, x.new_ones(channels, 1, k, 1), padding=(radius, 0), groups=channels)
    return sums / (_window(h, radius, x)[:, None] * _window(w, radius, x))


def _window(n: int, radius: int, like: torch.Tensor) -> torch.Tensor:
    """Pixels of each (2·radius+1)-window along a side of ``n`` pixels that lie inside it."""
    index = torch.arange(n, device=like.device)
    return ((index + radius).clamp(max=n - 1) - (index - radius).clamp(min=0) + 1).to(like.dtype)


def _inverse_sym3(m: dict[tuple[int, int], torch.Tensor]) -> dict[tuple[int, int], torch.Tensor]:
    """Invert a field of symmetric positive-definite 3x3 matrices by cofactors."""
    inv = {
        (0, 0): m[1, 1] * m[2, 2] - m[1, 2] * m[1, 2],
        (0, 1): m[0, 2] * m[1, 2] - m[0, 1] * m[2, 2],
        (0, 2): m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1],
        (1, 1): m[0, 0] * m[2, 2] - m[0, 2] * m[0, 2],
        (1, 2): m[0, 1] * m[0, 2] - m[0, 0] * m[1, 2],
        (2, 2): m[0, 0] * m[1, 1] - m[0, 1] * m[0, 1],
    }
    det = m[0, 0] * inv[0, 0] + m[0, 1] * inv[0, 1] + m[0, 2] * inv[0, 2]
    for key in list(inv):
        inv[key] = inv[key] / det
        inv[key[::-1]] = inv[key]
    return inv


def _linear_taps(
    n_in: int, n_out: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of pixel-centre-aligned linear upsampling n_in -> n_out."""
    pos = (torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = pos.clamp(min=0)
    lo = pos.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo, hi, (pos - lo).to(dtype)


def _blend_matrix(lo: torch.Tensor, hi: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
    """Rows ``(1 - weight)·src[lo] + weight·src[hi]`` as a (len(lo), n) matrix.

    Interpolating a strip's rows by one small matrix product over the source rows it needs
    is on CPU several times faster than gathering both source rows and blending them.
    """
    matrix = weight.new_zeros(len(lo), n)
    index = torch.arange(len(lo), device=lo.device)
    matrix.index_put_((index, lo), 1 - weight, accumulate=True)
    matrix.index_put_((index, hi), weight, accumulate=True)
    return matrix
