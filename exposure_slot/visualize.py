"""Pictures of what the slots found: colour overlays, label maps and montages."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

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
