"""How far half precision is from float32, on real photos with the default weights.

Run as ``python benchmarks/precision.py [--weights default] [--size 512]``. For each precision
the current machine offers (bfloat16 on CPU; float16 and bfloat16 on CUDA or MPS), prints the
mean and maximum absolute difference of the corrected photo to the float32 result (on the
0-1 scale), the PSNR between them, and the time relative to float32 in the same run. The
photos are scikit-image's samples, resized to ``--size`` on the long side.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
from machine import describe

from exposure_slot import ExposureCorrector
from exposure_slot.evaluation import psnr

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(long_side: int) -> list[np.ndarray]:
    """scikit-image sample photos as float32 RGB, long side ``long_side`` (a multiple of 4)."""
    from skimage import data

    out = []
    for name in PHOTOS:
        rgb = getattr(data, name)()
        h, w = rgb.shape[:2]
        scale = long_side / max(h, w)
        size = (round(w * scale / 4) * 4, round(h * scale / 4) * 4)
        out.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    return out


def precisions(device: torch.device) -> list[torch.dtype]:
    """Half precisions the corrector accepts on ``device``."""
    if device.type == "cpu":
        return [torch.bfloat16]
    if device.type == "mps":
        return [torch.float16]
    return [torch.float16, torch.bfloat16]


def timed(
    corrector: ExposureCorrector, images: list[np.ndarray], warm_up: bool = True
) -> tuple[list, float]:
    """Exact-mode corrections of ``images`` and their wall time (CUDA synchronised), after
    a warm-up on a small crop unless ``warm_up`` is False."""
    if warm_up:
        corrector(images[0][:64, :64])
    start = time.perf_counter()
    outs = [corrector(img, mode="exact") for img in images]
    if corrector.device.type == "cuda":
        torch.cuda.synchronize()
    return outs, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--device", default=None)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    images = photos(args.size)
    reference = ExposureCorrector(args.weights, device=args.device, dtype=torch.float32)
    ref_out, ref_time = timed(reference, images)
    device = reference.device
    print(describe())
    print(f"device {device}, weights {reference.weights_info.name}, {len(images)} photos, "
          f"long side {args.size}")  # fmt: skip
    print("| precision | mean abs diff | max abs diff | PSNR vs float32 (dB) | time vs float32 |")
    print("|---|---|---|---|---|")
    print("| float32 | 0 | 0 | inf | 1.00 |")
    for dtype in precisions(device):
        half = ExposureCorrector(args.weights, device=device, dtype=dtype)
        outs, seconds = timed(half, images)
        diffs = [np.abs(a - b) for a, b in zip(outs, ref_out, strict=True)]
        mean = float(np.mean([d.mean() for d in diffs]))
        worst = float(max(d.max() for d in diffs))
        score = float(np.mean([psnr(a, b) for a, b in zip(outs, ref_out, strict=True)]))
        name = str(dtype).removeprefix("torch.")
        print(f"| {name} | {mean:.2e} | {worst:.3f} | {score:.1f} | {seconds / ref_time:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
