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

Images are float torch tensors in [0, 1] of shape (3, H, W) or (N, 3, H, W), on any device,
or 8-bit ``H×W×3`` photos (the ``_uint8`` functions), which are read and written a strip at
a time so that no full-size float copy is made. Coefficients are (N, 12, h, w): channels 0-8
are A row by row (output channel c uses ``A[3c:3c+3]``), channels 9-11 are b.

The public functions check their arguments; :func:`correct`, the pipeline that
:mod:`exposure_slot.highres.pipeline` runs, takes a :class:`FloatPhoto` or :class:`Uint8Photo`
made from checked pixels and checks nothing again. Both kinds of photo go through the same
functions; they differ only in how a strip is read and written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from exposure_slot.descriptor import DESCRIPTOR
from exposure_slot.errors import ImageTypeError, InvalidImageError, OptionError
from exposure_slot.network import NetOutput

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_RADIUS",
    "FloatPhoto",
    "Uint8Photo",
    "apply_affine",
    "apply_affine_uint8",
    "correct",
    "downscale",
    "downscale_uint8",
    "fit_local_affine",
    "proxy_size",
    "transfer",
    "transfer_uint8",
]

DEFAULT_RADIUS = 8
"""Window radius of the local fit, in proxy pixels (17x17 windows at a 1024 px long side)."""

DEFAULT_EPS = 1e-4
"""Ridge regularisation of the 3x3 colour covariance, in squared square-root units."""

_PRIOR_DELTA = 0.05
"""Offset of the gain prior: the ridge term pulls each diagonal coefficient towards the
window's mean gain ``(out + delta) / (in + delta)`` instead of towards zero, so flat or
nearly black windows get a plain gain rather than a flattened output."""
_FIT_ROWS = 256
"""Proxy rows per block of the local fit (see :func:`_solve`)."""
_STRIP_PIXELS = 1 << 17
"""Full-resolution pixels per strip in apply_affine: its temporaries (the upsampled
coefficients) mostly stay in the CPU cache."""

Reader = Callable[[slice], torch.Tensor]
"""A strip of rows of a photo: (N, 3, rows, W) float in [0, 1]."""
Writer = Callable[[slice, int, torch.Tensor], None]
"""Takes output channel c of a strip in the fitting domain (and may clip it in place)."""


def proxy_size(
    h: int, w: int, long_side: int = 1024, multiple: int = DESCRIPTOR.size_multiple
) -> tuple[int, int]:
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
    _check_proxy(size, tuple(x.shape[-2:]), "downscale")
    x = FloatPhoto(x).downscale(size)
    return x if batched else x[0]


def downscale_uint8(rgb: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`downscale` of an 8-bit ``H×W×3`` photo: (1, 3, h, w) float32 in [0, 1]."""
    _check_uint8_rgb(rgb)
    _check_proxy(size, tuple(rgb.shape[:2]), "downscale_uint8")
    return Uint8Photo(rgb).downscale(size)


def _check_proxy(size: tuple[int, int], image: tuple[int, ...], name: str) -> None:
    h, w = size
    if not (0 < h <= image[0] and 0 < w <= image[1]):
        raise OptionError(
            f"{name}: size {tuple(size)} must be positive and at most the image size {image}"
        )


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
    result = _fit(guide, target, radius, eps)
    return result if batched else result[0]


def _fit(guide: torch.Tensor, target: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """:func:`fit_local_affine` on checked (N, 3, h, w) proxies."""
    dtype = torch.float64 if guide.dtype == torch.float64 else torch.float32
    return _solve(_encode(guide.to(dtype)), _encode(target.to(dtype)), radius, eps)


def _solve(guide: torch.Tensor, target: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Ridge-regularised local affine fit (with the gain prior), box-averaged coefficients.

    Done in blocks of :data:`_FIT_ROWS` rows, each with the ``2·radius`` rows of context its
    two box filters need: whole-proxy temporaries would each be fresh memory to fault in
    (the reason :mod:`exposure_slot.highres.exact` works in stage tiles).
    """
    height = guide.shape[-2]
    out = guide.new_empty(guide.shape[0], 12, *guide.shape[-2:])
    for top in range(0, height, _FIT_ROWS):
        bottom = min(top + _FIT_ROWS, height)
        c0, c1 = max(top - radius, 0), min(bottom + radius, height)  # coefficient rows
        s0, s1 = max(c0 - radius, 0), min(c1 + radius, height)  # statistics rows
        means = _box(_statistics(guide[:, :, s0:s1], target[:, :, s0:s1]), radius, s0, height)
        coeffs = _coefficients(means[:, :, c0 - s0 : c1 - s0], eps)
        out[:, :, top:bottom] = _box(coeffs, radius, c0, height)[:, :, top - c0 : bottom - c0]
    return out


def _statistics(guide: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel input, output and the products whose window means the fit needs:
    (N, 21, h, w) = in (3), out (3), in_i·in_j for i ≤ j (6), out_c·in_i (9)."""
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    products = [guide[:, i] * guide[:, j] for i, j in pairs]
    products += [target[:, c] * guide[:, i] for c in range(3) for i in range(3)]
    return torch.cat([guide, target, torch.stack(products, 1)], 1)


def _coefficients(means: torch.Tensor, eps: float) -> torch.Tensor:
    """Solve each window's ridge regression from the window means of :func:`_statistics`."""
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
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
    return torch.stack(coeffs + offsets, 1)


def apply_affine(
    full_in: torch.Tensor,
    coeffs: torch.Tensor,
    *,
    strip_rows: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply proxy coefficients to the full-resolution input; returns the clipped output.

    The coefficients are upsampled bilinearly (pixel-centre aligned, like
    ``F.interpolate(align_corners=False)``; across the width first, on the few coefficient
    rows a strip needs, then between rows by a small matrix product) and applied per pixel.
    Work is done in horizontal strips of ``strip_rows`` rows (default: about an eighth of a
    megapixel), so the temporary memory is O(strip) and the only full-size tensors are the
    input and the output. The output has the dtype of ``full_in``; ``out`` (a tensor like
    ``full_in``, or ``full_in`` itself: each strip is read before it is written) receives it
    instead of a new tensor.
    """
    image, batched = _as_batch(full_in, "full_in")
    grid = _coefficient_grid(coeffs, image.shape[0], "apply_affine")
    if strip_rows is not None and (
        isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1
    ):
        raise OptionError(f"apply_affine: strip_rows must be a positive int, got {strip_rows!r}")
    if out is not None and (
        not isinstance(out, torch.Tensor)
        or (out.shape, out.dtype, out.device) != (full_in.shape, image.dtype, image.device)
    ):
        raise InvalidImageError(
            f"apply_affine: out must be a tensor of the shape, dtype and device of full_in "
            f"{tuple(full_in.shape)}"
        )
    target = None if out is None else (out if batched else out.unsqueeze(0))
    result = _apply(FloatPhoto(image, target), grid, strip_rows)
    if out is not None:
        return out
    return result if batched else result[0]


def apply_affine_uint8(rgb: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """:func:`apply_affine` for an 8-bit ``H×W×3`` photo: uint8 in, uint8 out (rounded).

    The same arithmetic on each strip (converted to float there), so no full-size float
    copy of the photo or of the result is made.
    """
    _check_uint8_rgb(rgb)
    return _apply(Uint8Photo(rgb), _coefficient_grid(coeffs, 1, "apply_affine_uint8"))


def _coefficient_grid(coeffs: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    """``coeffs`` from :func:`fit_local_affine` as (N, 12, h, w) for a batch of ``batch``
    images; anything else is an error naming ``name``."""
    if not (isinstance(coeffs, torch.Tensor) and coeffs.is_floating_point()):
        raise ImageTypeError(f"{name}: coeffs must be a float tensor, got {type(coeffs)}")
    grid = coeffs if coeffs.dim() == 4 else coeffs.unsqueeze(0)
    if grid.dim() != 4 or grid.shape[:2] != (batch, 12):
        raise InvalidImageError(
            f"{name}: coeffs of shape {tuple(coeffs.shape)} do not match an image batch "
            f"of {batch}: expected (N, 12, h, w) from fit_local_affine"
        )
    return grid


class Photo(Protocol):
    """A full-resolution image the fast path corrects: how to make its proxy, and how to
    read its strips and write their corrected values (:func:`_apply`)."""

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def device(self) -> torch.device: ...

    def downscale(self, size: tuple[int, int]) -> torch.Tensor:
        """The proxy: (N, 3, h, w) float in [0, 1], area-averaged to ``size``."""
        ...

    def strips(self, grid: torch.Tensor) -> tuple[Reader, Writer, torch.Tensor]:
        """How :func:`_apply` reads and writes the photo's strips for coefficients ``grid``
        (on the photo's device), and the tensor the writer fills."""
        ...

    def whole(self, proxy_out: torch.Tensor) -> torch.Tensor:
        """The photo's output from a clipped correction at its own size."""
        ...


class FloatPhoto:
    """A float (N, 3, H, W) batch in [0, 1]; the output is written into ``out`` (a tensor
    like it, or the batch itself) when given, else into a new tensor."""

    def __init__(self, image: torch.Tensor, out: torch.Tensor | None = None):
        self.image, self.out = image, out

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])

    @property
    def device(self) -> torch.device:
        return self.image.device

    def downscale(self, size: tuple[int, int]) -> torch.Tensor:
        """Area average (``F.interpolate(mode="area")``); the batch itself at its own size."""
        if tuple(size) == self.size:
            return self.image
        return F.interpolate(self.image, size=tuple(size), mode="area")

    def strips(self, grid: torch.Tensor) -> tuple[Reader, Writer, torch.Tensor]:
        out = torch.empty_like(self.image) if self.out is None else self.out

        def write(rows: slice, c: int, value: torch.Tensor) -> None:
            _decode(value, out[:, c, rows])

        return lambda rows: self.image[:, :, rows], write, out

    def whole(self, proxy_out: torch.Tensor) -> torch.Tensor:
        return proxy_out.to(self.image.dtype)


class Uint8Photo:
    """An 8-bit ``H×W×3`` photo; strips are converted to float as they are read and
    rounded back to 8 bits as they are written, so no full-size float copy is made."""

    def __init__(self, rgb: torch.Tensor):
        self.rgb = rgb

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.rgb.shape[:2])

    @property
    def device(self) -> torch.device:
        return self.rgb.device

    def downscale(self, size: tuple[int, int]) -> torch.Tensor:
        """(1, 3, h, w) float32: rows are converted to float a block at a time and averaged
        across the width, then each proxy row is the mean of the rows it covers (the windows
        of ``mode="area"``)."""
        rgb = self.rgb
        height, width = rgb.shape[:2]
        h, w = size
        index = torch.arange(h + 1, device=rgb.device)
        starts = (index[:-1] * height) // h
        ends = -((-(index[1:] * height)) // h)
        out = torch.empty(3, h, w, device=rgb.device)
        step = max(1, _STRIP_PIXELS // width * h // height)
        for top in range(0, h, step):
            bottom = min(top + step, h)
            r0, r1 = int(starts[top]), int(ends[bottom - 1])
            block = rgb[r0:r1].permute(2, 0, 1).float()
            block = F.adaptive_avg_pool2d(block, (r1 - r0, w))
            source = torch.arange(r0, r1, device=rgb.device)
            inside = (source >= starts[top:bottom, None]) & (source < ends[top:bottom, None])
            weights = inside / (ends[top:bottom] - starts[top:bottom])[:, None]
            torch.matmul(weights, block, out=out[:, top:bottom])
        return out.div_(255).unsqueeze(0)

    def strips(self, grid: torch.Tensor) -> tuple[Reader, Writer, torch.Tensor]:
        rgb = self.rgb
        out = torch.empty_like(rgb)
        planes = grid.new_empty(1, 3, max(1, _STRIP_PIXELS // rgb.shape[1]), rgb.shape[1])

        def read(rows: slice) -> torch.Tensor:
            strip = planes[:, :, : rows.stop - rows.start]
            return strip.copy_(rgb[rows].permute(2, 0, 1)).div_(255)

        def write(rows: slice, c: int, value: torch.Tensor) -> None:
            strip = planes[:, :, : rows.stop - rows.start]
            _decode(value, strip[:, c])
            if c == 2:
                out[rows] = strip[0].permute(1, 2, 0).mul(255).round_()

        return read, write, out

    def whole(self, proxy_out: torch.Tensor) -> torch.Tensor:
        return proxy_out[0].permute(1, 2, 0).mul(255).round_().to(torch.uint8)


def _apply(photo: Photo, coeffs: torch.Tensor, strip_rows: int | None = None) -> torch.Tensor:
    """Apply checked (N, 12, h, w) coefficients to ``photo`` in strips of ``strip_rows`` rows
    (default: about :data:`_STRIP_PIXELS` pixels); returns the corrected photo.

    ``read(rows)`` gives a strip of the input; ``write(rows, c, value)`` takes output
    channel c of the strip in the fitting domain, after the strip was read.
    """
    height, width = photo.size
    grid = coeffs.to(photo.device)
    read, write, out = photo.strips(grid)
    strip_rows = strip_rows or max(1, _STRIP_PIXELS // width)
    rows0, rows1, row_weight = _linear_taps(grid.shape[-2], height, grid.device, grid.dtype)
    first, last = rows0.tolist(), rows1.tolist()
    for top in range(0, height, strip_rows):
        rows = slice(top, min(top + strip_rows, height))
        g0, g1 = first[rows.start], last[rows.stop - 1] + 1
        wide = F.interpolate(grid[:, :, g0:g1], size=(g1 - g0, width), mode="bilinear")
        band = torch.matmul(
            _blend_matrix(rows0[rows] - g0, rows1[rows] - g0, row_weight[rows], g1 - g0), wide
        )
        strip = _encode(read(rows).to(grid.dtype))
        for c in range(3):
            value = band[:, 9 + c].addcmul(band[:, 3 * c], strip[:, 0])
            value.addcmul_(band[:, 3 * c + 1], strip[:, 1]).addcmul_(
                band[:, 3 * c + 2], strip[:, 2]
            )
            write(rows, c, value)
    return out


def _transfer(
    photo: Photo, proxy_in: torch.Tensor, proxy_out: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """Carry the correction ``proxy_in -> proxy_out`` (checked, of one shape) over to
    ``photo``; at full size ``proxy_out`` (clipped) is the answer. The fit runs where
    ``proxy_out`` is."""
    if tuple(proxy_in.shape[-2:]) == photo.size:
        return photo.whole(proxy_out.clamp(0, 1))
    return _apply(photo, _fit(proxy_in.to(proxy_out.device), proxy_out, radius, eps))


def correct(
    photo: Photo, long_side: int, network: Callable[[torch.Tensor], NetOutput]
) -> tuple[torch.Tensor, NetOutput, tuple[int, int]]:
    """The fast path: ``network`` (a checked, clipped pass) on the proxy of ``photo`` with
    long side ``long_side``, its correction carried to full resolution. Returns the
    corrected photo, the proxy's network output and the proxy's size."""
    size = proxy_size(*photo.size, long_side=long_side)
    proxy = photo.downscale(size)
    small = network(proxy)
    if size == photo.size:  # the network's pass was on the photo itself
        return photo.whole(small.image), small, size
    return _transfer(photo, proxy, small.image, DEFAULT_RADIUS, DEFAULT_EPS), small, size


def transfer(
    full_in: torch.Tensor,
    proxy_in: torch.Tensor,
    proxy_out: torch.Tensor,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Carry the correction ``proxy_in -> proxy_out`` over to ``full_in``, clipped to [0, 1].

    ``proxy_in`` should be ``downscale(full_in, proxy_size(...))``. When the proxy already has
    the full resolution, ``proxy_out`` is the exact answer and is returned (clipped) as is.
    ``out``: see :func:`apply_affine` (where the result is written when the proxy is smaller).
    """
    image, batched = _as_batch(full_in, "full_in")
    small = _check_proxies(proxy_in, proxy_out, radius, eps)
    if small[0].shape[:2] != image.shape[:2]:
        raise InvalidImageError(
            f"transfer: proxy_in {tuple(proxy_in.shape)} does not belong to full_in "
            f"{tuple(full_in.shape)} (batch or channels differ)"
        )
    _check_not_larger(small[0], image.shape[-2:], "transfer", f"full_in {tuple(full_in.shape)}")
    target = None if out is None else _as_batch(out, "out")[0]
    result = _transfer(FloatPhoto(image, target), *small, radius, eps)
    return result if batched else result[0]


def transfer_uint8(
    rgb: torch.Tensor,
    proxy_in: torch.Tensor,
    proxy_out: torch.Tensor,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """:func:`transfer` for an 8-bit ``H×W×3`` photo (``proxy_in`` from
    :func:`downscale_uint8`): returns the corrected photo as ``H×W×3`` uint8."""
    _check_uint8_rgb(rgb)
    small = _check_proxies(proxy_in, proxy_out, radius, eps)
    if small[0].shape[0] != 1:
        raise InvalidImageError(
            f"transfer_uint8: proxy_in {tuple(proxy_in.shape)} does not belong to a photo of "
            f"{tuple(rgb.shape)}"
        )
    _check_not_larger(small[0], rgb.shape[:2], "transfer_uint8", f"a photo of {tuple(rgb.shape)}")
    return _transfer(Uint8Photo(rgb), *small, radius, eps)


def _check_proxies(
    proxy_in: torch.Tensor, proxy_out: torch.Tensor, radius: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``proxy_in`` and ``proxy_out`` as (N, 3, h, w) batches of one shape, and the fit's
    options, checked."""
    guide, _ = _as_batch(proxy_in, "proxy_in")
    target, _ = _as_batch(proxy_out, "proxy_out")
    if guide.shape != target.shape:
        raise InvalidImageError(
            f"proxy_in {tuple(proxy_in.shape)} and proxy_out {tuple(proxy_out.shape)} must "
            "have the same shape"
        )
    _check_fit_options(radius, eps)
    return guide, target


def _check_not_larger(proxy: torch.Tensor, size: tuple[int, ...], name: str, what: str) -> None:
    if proxy.shape[-2] > size[0] or proxy.shape[-1] > size[1]:
        raise InvalidImageError(f"{name}: proxy_in {tuple(proxy.shape)} is larger than {what}")


def _check_uint8_rgb(rgb: torch.Tensor) -> None:
    if not isinstance(rgb, torch.Tensor) or rgb.dtype != torch.uint8:
        raise ImageTypeError(f"expected an H×W×3 uint8 tensor, got {_describe(rgb)}")
    if rgb.dim() != 3 or rgb.shape[2] != 3 or rgb.numel() == 0:
        raise InvalidImageError(f"expected an H×W×3 uint8 tensor, got shape {tuple(rgb.shape)}")


def _describe(x: object) -> str:
    return f"{type(x).__name__} of dtype {x.dtype}" if hasattr(x, "dtype") else type(x).__name__


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


def _decode(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Map fitting-domain values back to [0, 1] into ``out`` (``y`` is clipped in place)."""
    return torch.square(y.clamp_(0, 1), out=out)


def _box(x: torch.Tensor, radius: int, top: int = 0, height: int | None = None) -> torch.Tensor:
    """Mean over (2·radius+1)² windows, shrunk at the image borders.

    ``x`` holds rows ``top ..`` of an image of ``height`` rows (default: all of them); rows
    whose windows reach beyond ``x`` without reaching the image border come out wrong, and
    the caller drops them. Separable sums by depthwise convolutions in channels-last layout
    (on CPU faster than average pooling), divided by the number of image
    pixels in each window.
    """
    channels, (h, w) = x.shape[1], x.shape[-2:]
    k = 2 * radius + 1
    x = x.contiguous(memory_format=torch.channels_last)
    sums = F.conv2d(x, x.new_ones(channels, 1, 1, k), padding=(0, radius), groups=channels)
    sums = F.conv2d(sums, x.new_ones(channels, 1, k, 1), padding=(radius, 0), groups=channels)
    rows = _window(h if height is None else height, radius, x)[top : top + h]
    return sums.contiguous().div_(rows[:, None] * _window(w, radius, x))


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
    is on CPU faster than gathering both source rows and blending them.
    """
    matrix = weight.new_zeros(len(lo), n)
    index = torch.arange(len(lo), device=lo.device)
    matrix.index_put_((index, lo), 1 - weight, accumulate=True)
    matrix.index_put_((index, hi), weight, accumulate=True)
    return matrix
