"""Realistic synthetic exposure errors for training and fine-tuning.

Real exposure errors come from high-dynamic-range scenes: in an under-exposed frame the sky,
lamps and windows stay bright while the rest is dark; in an over-exposed frame they clip to
white. A well-exposed photo is already tone-mapped, so scaling it in linear light cannot
produce that. This module therefore

1. decodes sRGB to linear light and expands the highlights back to scene radiance with an
   inverse camera shoulder (``rad = lin / (1 - c * lin)``),
2. changes the exposure by ``2 ** EV`` with a spatially varying EV map (a global EV, a smooth
   ramp across the frame and a soft blob, e.g. a backlit subject or a bright window),
3. adds sensor noise (Poisson-Gaussian, in linear light, so dark frames get noisier),
   applies a mild white-balance error and clips at the sensor's white level (lost detail),
4. re-encodes with a camera-like tone curve (shoulder, a soft toe that darkens the deepest
   shadows without clipping them, gamma), varied per sample, and
5. compresses as JPEG at a random quality.

With EV 0, no ramp, blob, noise, white-balance error or compression, the round trip gives the
photo back (up to the sRGB/gamma mismatch). ``make_pair`` is the entry point for training:
it draws parameters, sets the global EV so that the input's mean brightness follows that of
real badly exposed photos (``calibrate_ev``), and returns ``(input, target, params)`` where
the target is the photo. ``make_scene_pair`` does the same from real scene radiance, whose
dynamic range needs no expansion; its target is the exposure fusion of a bracket of the
scene, as the references of real bracketed data sets are made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from exposure_slot.errors import ImageTypeError, InvalidImageError, OptionError

DIRECTIONS = ("under", "over", "mixed")
DIRECTION_WEIGHTS = (0.45, 0.35, 0.20)
# EV range a calibrated global EV may take per direction (stops).
EV_LIMITS = {"under": (-7.0, -0.7), "over": (0.5, 5.0), "mixed": (-4.0, 0.0)}
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
MILD_HDR_SHARE = 0.25
"""Share of the HDR expansion that mild errors get (otherwise a -0.2 EV frame with expanded
highlights would come out brighter than the photo)."""
HDR_SHADOW_SHARE = 0.25
"""Share of the HDR expansion applied below the photo's median brightness. Expanding the
shadows as much as the highlights, together with a hard black-point toe, made synthetic
under-exposed frames 30% black (median over samples; ``scripts/synthesis_stats.py``) where
a real dark frame has well under 1%, and taught the network to lift every shadow to a flat
grey."""

REEXPOSE_C = 0.9
"""Camera shoulder of :func:`reexpose` (the middle of ``sample_params``' range)."""
WELL_EXPOSED_MEAN = 0.45
"""Mean luma of a well-exposed frame (real well-exposed references: about 0.37-0.58)."""
SCENE_BRACKET_EVS = (-4, -3, -2, -1, 0, 1, 2, 3)
"""Exposure bracket around the well-exposed frame that the fused target of a scene merges."""
SCENE_EV_LIMITS = (-16.0, 16.0)
"""Global EV range for scene radiance, whose scale is the scene's own."""


@dataclass
class ExposureParams:
    """Everything that decides one synthetic exposure error (so it can be replayed).

    Coordinates are relative to the frame (0..1), so the same parameters apply to a crop
    or a resized copy of the photo. EV values are in stops (factor ``2 ** EV``).
    ``target_mean`` is the mean luma the input should have: ``calibrate_ev`` (used by
    ``make_pair``) sets ``ev`` to reach it for a given photo; ``synthesize`` uses ``ev`` as is.
    """

    direction: str
    ev: float
    ramp_ev: float = 0.0
    ramp_angle: float = 0.0
    blob_ev: float = 0.0
    blob_center: tuple[float, float] = (0.5, 0.5)
    blob_radius: float = 0.3
    blob_at_brightest: bool = False
    hdr_boost: float = 0.0
    expand_c: float = 0.9
    shoulder_c: float = 0.9
    toe: float = 0.0
    gamma: float = 2.2
    noise_shot: float = 0.0
    noise_read: float = 0.0
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    jpeg_quality: int | None = None
    seed: int = 0
    target_mean: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise OptionError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        for name in ("expand_c", "shoulder_c"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise OptionError(f"{name} must be in [0, 1), got {value}")
        if not 0.0 <= self.toe < 0.5:
            raise OptionError(f"toe must be in [0, 0.5), got {self.toe}")
        if self.gamma <= 0:
            raise OptionError(f"gamma must be positive, got {self.gamma}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise OptionError(f"jpeg_quality must be in 1..100 or None, got {self.jpeg_quality}")


def sample_params(
    rng: np.random.Generator, direction: str | None = None, mild: bool = False
) -> ExposureParams:
    """Draw random exposure-error parameters; ``direction`` None picks one at random.

    ``under``: EV ~ U(-5, -1); ``over``: EV ~ U(0.7, 3); both with a smooth ramp of up to
    ±1 EV and sometimes a soft blob of ±1.5 EV. ``mixed``: a moderate global EV with a strong
    ramp or blob, so one part of the frame is too dark and another too bright.

    ``target_mean`` is drawn to match the mean luma of real badly exposed photos (under:
    median 0.12, 5th-95th percentile about 0.08-0.19; over: median 0.79, about 0.71-0.87),
    because the right EV depends on how bright the photo is (see ``calibrate_ev``).

    ``mild`` (under and over only): a small error of a fixed EV instead, ``U(-1.5, -0.2)`` or
    ``U(0.2, 1.5)`` with a ramp of up to ±0.5 EV and no blob, as in bracketed captures
    (MSEC's ±1 and ±1.5 EV), so that a network also learns to correct slightly; their HDR
    expansion is ``MILD_HDR_SHARE`` of the usual (a bracket of an ordinary scene).
    """
    if direction is None:
        direction = str(rng.choice(DIRECTIONS, p=DIRECTION_WEIGHTS))
    if direction not in DIRECTIONS:
        raise OptionError(f"direction must be one of {DIRECTIONS} or None, got {direction!r}")

    ramp_angle = float(rng.uniform(0, 2 * np.pi))
    blob_center = (float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85)))
    blob_radius = float(rng.uniform(0.15, 0.45))
    blob_at_brightest = bool(rng.random() < 0.5)
    if direction == "under":
        ev = float(rng.uniform(-5.0, -1.0))
        ramp_ev = float(rng.uniform(-1.0, 1.0))
        blob_ev = float(rng.uniform(-1.5, 1.5)) if rng.random() < 0.4 else 0.0
        target_mean = float(0.12 * np.exp(np.clip(rng.normal(0.0, 0.27), -0.8, 0.8)))
    elif direction == "over":
        ev = float(rng.uniform(0.7, 3.0))
        ramp_ev = float(rng.uniform(-1.0, 1.0))
        blob_ev = float(rng.uniform(-1.5, 1.5)) if rng.random() < 0.4 else 0.0
        target_mean = float(np.clip(rng.normal(0.79, 0.05), 0.6, 0.9))
    else:
        ev = float(rng.uniform(-2.5, 0.0))
        sign = float(rng.choice([-1.0, 1.0]))
        if rng.random() < 0.5:
            ramp_ev, blob_ev = sign * float(rng.uniform(2.0, 4.0)), 0.0
        else:
            ramp_ev = float(rng.uniform(-1.0, 1.0))
            blob_ev = float(rng.uniform(2.0, 4.0))
            blob_radius = float(rng.uniform(0.2, 0.5))
        target_mean = float(rng.uniform(0.25, 0.55))
    mild = mild and direction != "mixed"
    if mild:
        sign = -1.0 if direction == "under" else 1.0
        ev = sign * float(rng.uniform(0.2, 1.5))
        ramp_ev, blob_ev = float(rng.uniform(-0.5, 0.5)), 0.0
        target_mean = None

    expand_c = float(rng.uniform(0.85, 0.97))
    dark = ev < 0
    hdr_boost = float(rng.uniform(0.0, 0.7) if direction == "over" else rng.uniform(0.4, 1.8))
    return ExposureParams(
        direction=direction,
        ev=ev,
        ramp_ev=ramp_ev,
        ramp_angle=ramp_angle,
        blob_ev=blob_ev,
        blob_center=blob_center,
        blob_radius=blob_radius,
        blob_at_brightest=blob_at_brightest,
        hdr_boost=hdr_boost * (MILD_HDR_SHARE if mild else 1.0),
        expand_c=expand_c,
        shoulder_c=float(np.clip(expand_c + rng.uniform(-0.04, 0.03), 0.8, 0.98)),
        toe=float(rng.uniform(0.0, 0.02)),
        gamma=float(rng.uniform(2.0, 2.4)),
        noise_shot=float(np.exp(rng.uniform(np.log(2e-4), np.log(3e-3 if dark else 1e-3)))),
        noise_read=float(np.exp(rng.uniform(np.log(1e-4), np.log(1.5e-3 if dark else 5e-4)))),
        wb_gains=(float(np.exp(rng.normal(0, 0.06))), 1.0, float(np.exp(rng.normal(0, 0.06)))),
        jpeg_quality=int(rng.integers(60, 96)) if rng.random() < 0.85 else None,
        seed=int(rng.integers(0, 2**31 - 1)),
        target_mean=target_mean,
    )


def check_photo(photo: np.ndarray, name: str = "photo") -> np.ndarray:
    """Validate an sRGB float photo (HxWx3 in [0, 1]) and return it as float32."""
    if not isinstance(photo, np.ndarray):
        raise ImageTypeError(f"{name} must be a numpy array, got {type(photo).__name__}")
    if not np.issubdtype(photo.dtype, np.floating):
        raise ImageTypeError(
            f"{name} must be a float array in [0, 1], got dtype {photo.dtype} "
            "(divide uint8 images by 255)"
        )
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.shape[0] < 2 or photo.shape[1] < 2:
        raise InvalidImageError(f"{name} must have shape HxWx3 (H, W >= 2), got {photo.shape}")
    if not np.all(np.isfinite(photo)):
        raise InvalidImageError(f"{name} contains NaN or infinite values")
    if photo.min() < -1e-6 or photo.max() > 1 + 1e-6:
        raise InvalidImageError(
            f"{name} values must be in [0, 1], got [{photo.min():.3g}, {photo.max():.3g}]"
        )
    return np.clip(photo, 0.0, 1.0).astype(np.float32, copy=False)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """Decode sRGB values in [0, 1] to linear light (IEC 61966-2-1)."""
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an RGB image (HxWx3) as an HxW array, in the image's own encoding."""
    return image @ LUMA


def ev_map(params: ExposureParams, photo: np.ndarray, lin: np.ndarray) -> np.ndarray:
    """Per-pixel EV: global EV + smooth linear ramp + soft blob (backlight, window, spot)
    + large-scale contrast expansion (``hdr_boost``).

    The expansion undoes the local tone mapping a finished photo has had: bright regions
    (sky, lamps, windows) get ``hdr_boost`` times their large-scale brightness in stops
    above the photo's median, so a dark frame keeps a bright sky; dark regions go down by
    only ``HDR_SHADOW_SHARE`` of that (see there).
    """
    height, width = photo.shape[:2]
    scale = max(height, width)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / scale
    xs = (np.arange(width, dtype=np.float32) + 0.5) / scale
    ys -= ys.mean()
    xs -= xs.mean()
    projection = np.cos(params.ramp_angle) * xs[None, :] + np.sin(params.ramp_angle) * ys[:, None]
    span = max(float(np.ptp(projection)), 1e-6)
    ev = params.ev + params.ramp_ev * projection / span
    if params.blob_ev:
        cy, cx = params.blob_center
        if params.blob_at_brightest:
            cy, cx = brightest_point(photo)
        dy = (np.arange(height, dtype=np.float32) + 0.5) / height - cy
        dx = (np.arange(width, dtype=np.float32) + 0.5) / width - cx
        dist2 = (dy[:, None] * height / scale) ** 2 + (dx[None, :] * width / scale) ** 2
        ev = ev + params.blob_ev * np.exp(-dist2 / (2 * params.blob_radius**2))
    if params.hdr_boost:
        stops = base_layer_stops(lin)
        ev = ev + params.hdr_boost * np.where(stops > 0, stops, HDR_SHADOW_SHARE * stops)
    return ev.astype(np.float32)


def base_layer_stops(lin: np.ndarray) -> np.ndarray:
    """Large-scale log2 brightness of a linear image relative to its median, within ±3."""
    height, width = lin.shape[:2]
    scale = 64 / max(height, width)
    small = cv2.resize(
        luminance(lin).astype(np.float32),
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    stops = np.log2(np.maximum(cv2.GaussianBlur(small, (0, 0), 3.0), 1e-4))
    stops = np.clip(stops - np.median(stops), -3.0, 3.0)
    return cv2.resize(stops, (width, height), interpolation=cv2.INTER_LINEAR)


def brightest_point(photo: np.ndarray) -> tuple[float, float]:
    """Relative (y, x) of the brightest region of a heavily blurred copy of the photo."""
    small = cv2.resize(luminance(photo), (32, 32), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    y, x = np.unravel_index(int(np.argmax(small)), small.shape)
    return (y + 0.5) / 32, (x + 0.5) / 32


def synthesize(photo: np.ndarray, params: ExposureParams) -> np.ndarray:
    """Turn a well-exposed sRGB photo into a badly exposed one (float32 HxWx3 in [0, 1])."""
    photo = check_photo(photo)
    out = expose(photo, params)
    if params.jpeg_quality is not None:
        out = jpeg_roundtrip(out, params.jpeg_quality)
    return out


def expose(photo: np.ndarray, params: ExposureParams, noise: bool = True) -> np.ndarray:
    """The camera model of ``synthesize`` without JPEG compression (photo already checked)."""
    lin = np.minimum(srgb_to_linear(photo), 1.0 - 1e-4)
    radiance = lin / (1.0 - params.expand_c * lin)
    return develop(radiance * np.exp2(ev_map(params, photo, lin))[..., None], params, noise)


def develop(radiance: np.ndarray, params: ExposureParams, noise: bool = True) -> np.ndarray:
    """The camera of ``params`` on exposed radiance: sensor noise, white balance, clipping at
    the white level, shoulder, toe and gamma; float32 in [0, 1]."""
    rng = np.random.default_rng(params.seed)
    if noise and (params.noise_shot or params.noise_read):
        variance = params.noise_shot * radiance + params.noise_read**2
        radiance = radiance + np.sqrt(variance) * rng.standard_normal(radiance.shape)
    white = 1.0 / (1.0 - params.shoulder_c)
    radiance = np.clip(radiance * np.asarray(params.wb_gains), 0.0, white)

    out = radiance / (1.0 + params.shoulder_c * radiance)
    if params.toe:
        out = out * out / (out + params.toe)
    return (out ** (1.0 / params.gamma)).astype(np.float32)


def calibrate_ev(photo: np.ndarray, params: ExposureParams) -> ExposureParams:
    """Return params whose global EV gives the photo the mean luma ``params.target_mean``.

    The mean luma of the exposed photo grows monotonically with EV, so a bisection on a small
    copy of the photo finds it; the EV stays within ``EV_LIMITS`` of the direction (a very
    dark photo is not pushed beyond +4 EV to look over-exposed). Params without a target
    are returned unchanged.
    """
    if params.target_mean is None:
        return params
    return _calibrate(check_photo(photo), params, expose, EV_LIMITS[params.direction])


def _calibrate(
    image: np.ndarray,
    params: ExposureParams,
    render: Callable[[np.ndarray, ExposureParams, bool], np.ndarray],
    limits: tuple[float, float],
) -> ExposureParams:
    """Bisect the global EV within ``limits`` so that ``render`` (noise-free) of a small copy
    of ``image`` has the mean luma ``params.target_mean``."""
    scale = 48 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    low, high = limits
    for _ in range(18):
        mid = 0.5 * (low + high)
        mean = float(luminance(render(image, replace(params, ev=mid), False)).mean())
        low, high = (mid, high) if mean < params.target_mean else (low, mid)
    return replace(params, ev=0.5 * (low + high))


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress and decompress an RGB float image as JPEG (8 bit) at the given quality."""
    bgr = cv2.cvtColor(np.round(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InvalidImageError(f"JPEG encoding failed for an image of shape {image.shape}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def make_pair(
    photo: np.ndarray,
    rng: np.random.Generator,
    direction: str | None = None,
    mild_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, ExposureParams]:
    """Draw parameters and return ``(badly_exposed_input, target_photo, params)``; a share
    ``mild_fraction`` of the errors is mild (see :func:`sample_params`). With the default 0
    no extra random number is drawn, so seeded sets stay as they were."""
    target = check_photo(photo)
    mild = mild_fraction > 0 and rng.random() < mild_fraction
    params = calibrate_ev(target, sample_params(rng, direction, mild))
    return synthesize(target, params), target, params


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Encode linear light in [0, 1] as sRGB (the inverse of :func:`srgb_to_linear`)."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def reexpose(photo: np.ndarray, ev: float) -> np.ndarray:
    """A well-exposed photo exposed ``ev`` stops brighter through a camera shoulder
    (``REEXPOSE_C``): highlights roll off instead of clipping; EV 0 gives the photo back."""
    lin = np.minimum(srgb_to_linear(photo), 1.0 - 1e-4)
    radiance = lin / (1.0 - REEXPOSE_C * lin) * 2.0**ev
    return linear_to_srgb(radiance / (1.0 + REEXPOSE_C * radiance)).astype(np.float32)


def expose_into(photo: np.ndarray, low: float, high: float = 1.0) -> np.ndarray:
    """The photo re-exposed (:func:`reexpose`) so that its mean luma lies in [``low``,
    ``high``]: a darker photo is brightened to ``low``, a brighter one darkened to ``high``,
    one already inside is returned as it is."""
    photo = check_photo(photo)
    mean = float(luminance(photo).mean())
    if low <= mean <= high:
        return photo
    goal = low if mean < low else high
    h, w = photo.shape[:2]
    scale = min(1.0, 128 / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    lo, hi = -8.0, 8.0
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if luminance(reexpose(small, mid)).mean() < goal else (lo, mid)
    return reexpose(photo, hi if mean < low else lo)


def check_radiance(radiance: np.ndarray, name: str = "radiance") -> np.ndarray:
    """Validate scene radiance (HxWx3, finite, non-negative) and return it as float32."""
    if not isinstance(radiance, np.ndarray) or not np.issubdtype(radiance.dtype, np.floating):
        raise ImageTypeError(f"{name} must be a float numpy array")
    if radiance.ndim != 3 or radiance.shape[2] != 3 or min(radiance.shape[:2]) < 2:
        raise InvalidImageError(f"{name} must have shape HxWx3 (H, W >= 2), got {radiance.shape}")
    if not np.all(np.isfinite(radiance)) or radiance.min() < 0:
        raise InvalidImageError(f"{name} must be finite and non-negative")
    return radiance.astype(np.float32, copy=False)


def expose_scene(radiance: np.ndarray, params: ExposureParams, noise: bool = True) -> np.ndarray:
    """A camera frame of real scene radiance: its EV map (global, ramp, blob; no
    ``hdr_boost``: the scene's dynamic range is its own) and camera (:func:`develop`)."""
    ev = ev_map(replace(params, hdr_boost=0.0), radiance, radiance)
    return develop(radiance * np.exp2(ev)[..., None], params, noise)


def fuse(frames: list[np.ndarray]) -> np.ndarray:
    """Exposure fusion (Mertens et al., OpenCV) of a bracket of 8-bit-quantised RGB frames
    in [0, 1]: every region taken from the frames that expose it well."""
    frames8 = [np.round(np.clip(f[..., ::-1], 0, 1) * 255).astype(np.uint8) for f in frames]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # OpenCV's threads sum in varying order: seeded pairs would differ
    try:
        fused = cv2.createMergeMertens().process(frames8)  # BGR, as OpenCV weighs contrast
    finally:
        cv2.setNumThreads(threads)
    return np.ascontiguousarray(np.clip(fused[..., ::-1], 0.0, 1.0), dtype=np.float32)


def well_exposed_bracket(
    radiance: np.ndarray, params: ExposureParams, noise: bool = False
) -> dict[int, np.ndarray]:
    """Frames at ``SCENE_BRACKET_EVS`` around the EV that renders the scene with mean luma
    ``WELL_EXPOSED_MEAN``, through the camera curve of ``params`` (no ramp, blob, white
    balance error; noise only if asked)."""
    camera = replace(
        params, ramp_ev=0.0, blob_ev=0.0, wb_gains=(1.0, 1.0, 1.0), target_mean=WELL_EXPOSED_MEAN
    )
    base = _calibrate(radiance, camera, expose_scene, SCENE_EV_LIMITS).ev
    return {
        ev: expose_scene(radiance, replace(camera, ev=base + ev), noise) for ev in SCENE_BRACKET_EVS
    }


def make_scene_pair(
    radiance: np.ndarray,
    rng: np.random.Generator,
    direction: str | None = None,
    mild_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, ExposureParams]:
    """Draw parameters and return ``(badly_exposed_input, target, params)`` for real scene
    radiance: the input is one camera frame (EV calibrated like :func:`make_pair`'s), the
    target the exposure fusion of a noise-free bracket through the same camera, as the
    references of real bracketed data sets are made."""
    radiance = check_radiance(radiance)
    mild = mild_fraction > 0 and rng.random() < mild_fraction
    params = replace(sample_params(rng, direction, mild), hdr_boost=0.0)
    if params.target_mean is None:  # mild: its EV is relative to a well-exposed frame
        base = _calibrate(
            radiance, replace(params, target_mean=WELL_EXPOSED_MEAN), expose_scene, SCENE_EV_LIMITS
        ).ev
        params = replace(params, ev=base + params.ev)
    else:
        params = _calibrate(radiance, params, expose_scene, SCENE_EV_LIMITS)
    inp = expose_scene(radiance, params)
    if params.jpeg_quality is not None:
        inp = jpeg_roundtrip(inp, params.jpeg_quality)
    target = fuse(list(well_exposed_bracket(radiance, params).values()))
    return inp, target, params
