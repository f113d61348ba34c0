"""Pictures of what the slots found: colour overlays, label maps and montages."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw


def palette(n: int) -> np.ndarray:
    """``n`` well-separated RGB colours (float32 in [0, 1]), evenly spaced in hue."""
    hues = [(i * 0.618034) % 1.0 for i in range(n)]
    return np.array([colorsys.hsv_to_rgb(h, 0.85, 0.95) for h in hues], dtype=np.float32)


def label_image(assignments: np.ndarray) -> Image.Image:
    """Each pixel painted in the colour of its most likely slot (``K×H×W`` soft maps)."""
    colours = palette(assignments.shape[0])
    rgb = colours[assignments.argmax(axis=0)]
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")


def overlay_slots(rgb: np.ndarray, assignments: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The photo blended with the soft slot colours (``Σ_k p_k · colour_k``)."""
    colours = palette(assignments.shape[0])
    tint = np.einsum("khw,kc->hwc", assignments.astype(np.float32), colours)
    blended = (1 - alpha) * rgb + alpha * tint
    return Image.fromarray(np.round(np.clip(blended, 0, 1) * 255).astype(np.uint8), "RGB")


def montage(panels: Sequence[Image.Image], titles: Sequence[str], height: int = 320) -> Image.Image:
    """Panels side by side at a common height, each with its title above it."""
    scaled = [p.convert("RGB").resize((max(1, round(p.width * height / p.height)), height))
              for p in panels]  # fmt: skip
    bar = 22
    sheet = Image.new("RGB", (sum(p.width for p in scaled), height + bar), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for panel, title in zip(scaled, titles, strict=True):
        sheet.paste(panel, (x, bar))
        draw.text((x + 4, 4), title, fill="black")
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
    rgb: np.ndarray, levels: Sequence[np.ndarray], *, height: int = 320, alpha: float = 0.5
) -> Image.Image:
    """One row per slot level: the photo tinted by slot, and the label map.

    ``levels`` are the ``K×H×W`` soft assignments of :attr:`SlotMaps.levels`.
    """
    rows = []
    for i, assignments in enumerate(levels):
        name = f"{level_name(i)} slots (level {i}, {assignments.shape[0]} slots)"
        panels = [overlay_slots(rgb, assignments, alpha=alpha), label_image(assignments)]
        rows.append(montage(panels, [f"{name}: overlay", f"{name}: labels"], height=height))
    return stack(rows)
