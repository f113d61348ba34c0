"""Pictures of what the slots found: colour overlays, label maps and montages."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import OptionError
from .pixel_values import luma


def palette(n: int) -> np.ndarray:
    """``n`` well-separated RGB colours (float32 in [0, 1]), evenly spaced in hue."""
    hues = [(i * 0.618034) % 1.0 for i in range(n)]
    return np.array([colorsys.hsv_to_rgb(h, 0.85, 0.95) for h in hues], dtype=np.float32)


def label_image(assignments: np.ndarray) -> Image.Image:
    """Each pixel painted in the colour of its most likely slot (``K×H×W`` soft maps)."""
    return to_pil(palette(assignments.shape[0])[assignments.argmax(axis=0)])


@dataclass(frozen=True)
class SlotStats:
    """What one slot holds: its share of the pixels (by most likely slot) and their brightness."""

    share: float
    brightness: float | None  # mean luma of its pixels; None when no pixel is in the slot

    @property
    def empty(self) -> bool:
        return self.share == 0


def slot_stats(rgb: np.ndarray, assignments: np.ndarray) -> list[SlotStats]:
    """Per slot of ``assignments`` (``K×H×W`` soft maps for the ``H×W×3`` photo ``rgb``)."""
    labels = assignments.argmax(axis=0).ravel()
    count = assignments.shape[0]
    pixels = np.bincount(labels, minlength=count)
    brightness = np.bincount(labels, weights=luma(rgb).ravel(), minlength=count)
    return [
        SlotStats(float(n / labels.size), float(total / n) if n else None)
        for n, total in zip(pixels, brightness, strict=True)
    ]


LEGEND_MAX_WIDTH = 320
"""Widest a legend gets (its font is at most 14 px): counted in a sheet's size limit."""


def _describe(slot: SlotStats) -> str:
    if slot.empty:
        return "empty"
    share = "<1%" if slot.share < 0.005 else f"{slot.share:.0%}"
    return f"{share}, brightness {slot.brightness:.2f}"


def legend(stats: Sequence[SlotStats], height: int) -> Image.Image:
    """A key to a slot picture: per slot its colour, share of pixels and mean brightness."""
    line = max(1, height // len(stats))
    size = max(6, min(14, line - 2))
    font = ImageFont.load_default(size=size)
    texts = [f"slot {k + 1}: {_describe(slot)}" for k, slot in enumerate(stats)]
    width = size + 12 + max(round(font.getlength(text)) for text in texts)
    panel = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(panel)
    colours = np.round(palette(len(stats)) * 255).astype(int)
    for k, (text, colour) in enumerate(zip(texts, colours, strict=True)):
        y = k * line + (line - size) // 2
        draw.rectangle((2, y, 2 + size, y + size), fill=tuple(int(c) for c in colour))
        draw.text((size + 8, y), text, fill="black", font=font)
    return panel


def overlay_slots(rgb: np.ndarray, assignments: np.ndarray, alpha: float = 0.6) -> Image.Image:
    """The photo's brightness tinted with the colour of each pixel's most likely slot.

    ``rgb`` is ``H×W×3`` float in [0, 1]; ``assignments`` the ``K×H×W`` soft maps. The
    brightness is stretched between its 1st and 99th percentiles, so that the structure of a
    dark or bright photo stays visible under the tint; ``alpha`` is the tint's weight.
    """
    brightness = luma(np.asarray(rgb, dtype=np.float32))
    low, high = np.percentile(brightness, [1, 99])
    if high - low > 1e-6:
        brightness = np.clip((brightness - low) / (high - low), 0, 1)
    tint = palette(assignments.shape[0])[assignments.argmax(axis=0)]
    blended = (1 - alpha) * brightness[..., None] + alpha * tint
    return to_pil(blended)


def to_pil(rgb: np.ndarray) -> Image.Image:
    """``H×W×3`` float RGB in [0, 1] as an 8-bit PIL image (clipped, rounded)."""
    return Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")


TITLE_BAR = 22
"""Height in pixels of the title strip above a montage's panels."""


MAX_SHEET_PIXELS = 16_000_000
"""Largest slot sheet :func:`slot_sheet` draws (e.g. panels 2000 pixels high for a square
photo): a sheet takes several times its pixel count in bytes while it is drawn."""


def panel_width(width: int, height: int, panel_height: int) -> int:
    """Width of a ``width×height`` picture scaled to ``panel_height`` (at least 1)."""
    return max(1, round(width * panel_height / height))


def montage(panels: Sequence[Image.Image], titles: Sequence[str], height: int = 320) -> Image.Image:
    """Panels side by side at a common height, each with its title above it."""
    scaled = [p.convert("RGB").resize((panel_width(p.width, p.height, height), height))
              for p in panels]  # fmt: skip
    sheet = Image.new("RGB", (sum(p.width for p in scaled), height + TITLE_BAR), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    x = 0
    for panel, title in zip(scaled, titles, strict=True):
        sheet.paste(panel, (x, TITLE_BAR))
        draw.text((x + 4, 2), title, fill="black", font=font)
        x += panel.width
    return sheet


def stack(rows: Sequence[Image.Image]) -> Image.Image:
    """Pictures one above the other, left-aligned on white."""
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row.convert("RGB"), (0, y))
        y += row.height
    return sheet


def fit_long_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale an ``H×W×3`` float image (area averaging) so its long side is ≤ ``long_side``."""
    h, w = rgb.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def level_name(level: int) -> str:
    """``main`` for level 0, ``sub`` for 1, ``sub-sub`` for 2..."""
    return "main" if level == 0 else "-".join(["sub"] * level)


def slot_sheet(
    rgb: np.ndarray, levels: Sequence[np.ndarray], *, height: int = 320, alpha: float = 0.6
) -> Image.Image:
    """One row per slot level: the photo tinted by slot, the label map and a legend.

    ``levels`` are the ``K×H×W`` soft assignments of :attr:`SlotMaps.levels`. The title says
    how many of a level's slots are empty (hold no pixel as their most likely slot); the
    legend gives each slot's colour, share of the pixels and their mean brightness (luma).
    A ``height`` that is not a positive int, or that makes the sheet larger than
    :data:`MAX_SHEET_PIXELS` (tall panels, or a long thin photo), is an OptionError.
    """
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise OptionError(f"height must be a positive int, not {height!r}")
    row_width = 2 * panel_width(rgb.shape[1], rgb.shape[0], height) + LEGEND_MAX_WIDTH
    pixels = row_width * (height + TITLE_BAR) * len(levels)
    if pixels > MAX_SHEET_PIXELS:
        raise OptionError(
            f"height {height} would make a slot sheet of {pixels:,} pixels for this "
            f"{rgb.shape[1]}×{rgb.shape[0]} photo, more than {MAX_SHEET_PIXELS:,}: use a smaller "
            "height"
        )
    rows = []
    for i, assignments in enumerate(levels):
        stats = slot_stats(rgb, assignments)
        empty = sum(slot.empty for slot in stats)
        name = f"{level_name(i)} slots ({len(stats)}, {empty} empty)"
        panels = [
            overlay_slots(rgb, assignments, alpha=alpha),
            label_image(assignments),
            legend(stats, height),
        ]
        rows.append(montage(panels, [name, "labels", "legend"], height=height))
    return stack(rows)


def correction_montage(
    rgb: np.ndarray,
    corrected: np.ndarray,
    levels: Sequence[np.ndarray],
    *,
    height: int = 240,
) -> Image.Image:
    """One row: input | corrected | main slots | sub slots (| sub-sub slots for level 3).

    ``rgb`` and ``corrected`` are ``H×W×3`` floats in [0, 1]; ``levels`` the soft maps of
    :attr:`SlotMaps.levels` for ``rgb``. Made for the README and docs.
    """
    panels = [to_pil(rgb), to_pil(corrected)]
    panels += [overlay_slots(rgb, assignments) for assignments in levels]
    titles = ["input", "corrected"]
    titles += [f"{level_name(i)} slots ({a.shape[0]})" for i, a in enumerate(levels)]
    return montage(panels, titles, height=height)
