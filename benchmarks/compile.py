"""``ExposureCorrector(compile=True)`` (torch.compile of the local stages) against eager.

Run as ``OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/compile.py [--size 1024]``. On
scikit-image's astronaut at ``--size`` pixels (long side), exact mode: prints for the eager and
the compiled corrector the first call's time (for the compiled one, compiling included) and
the best of ``--rounds`` later calls, the compiled/eager ratio of those, and the largest
difference between the two outputs (8-bit levels). Takes about 3 minutes on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from precision import photos, timed

from exposure_slot import ExposureCorrector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--device", default=None)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    image = (photos(args.size)[0] * 255).round().astype(np.uint8)
    rows, outputs = [], []
    for compiled in (False, True):
        corrector = ExposureCorrector(args.weights, device=args.device, compile=compiled)
        (out,), first = timed(corrector, [image], warm_up=False)
        best = min(timed(corrector, [image], warm_up=False)[1] for _ in range(args.rounds))
        rows.append((compiled, first, best))
        outputs.append(out.astype(int))
    h, w = image.shape[:2]
    print(describe())
    print(f"{w}×{h}, exact mode, device {corrector.device}")
    print("| network | first call s | best later call s |\n|---|---:|---:|")
    for compiled, first, best in rows:
        print(f"| {'compiled' if compiled else 'eager'} | {first:.2f} | {best:.2f} |")
    print(f"\ncompiled / eager time: {rows[1][2] / rows[0][2]:.2f}; max output difference "
          f"{np.abs(outputs[0] - outputs[1]).max()}/255")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
