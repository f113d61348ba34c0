"""Where fast mode's difference from exact mode comes from: the network or the transfer.

Fast mode = the network on a proxy + an edge-aware transfer of its correction to full
resolution. Its output can differ from exact mode's (the network on the whole photo) for two
reasons, measured separately here for each photo and proxy size (PSNR in dB, float images):

- ``network``: the network's output on the proxy against exact mode's output shrunk to the
  proxy size (the same downscale). Low when the network's answer depends on the resolution
  it runs at: a convolution sees a different part of the scene at 1024 px than at 4000 px.
- ``transfer``: exact mode's output shrunk to the proxy and carried back to full resolution
  by the transfer, against exact mode's output: what fast mode would reach if the network
  answered at the proxy size as it does at full size (an upper bound on the transfer's part).
- ``fast``: the transfer of the network's proxy output (what ``mode="fast"`` returns,
  before rounding to 8 bits), against exact mode.
- ``fp32 proxy``: the same with the proxy pass in float32 instead of the corrector's
  ``proxy_dtype`` (bfloat16 on CPUs that compute it natively; else the two columns agree):
  what the faster precision costs.

Photos are brought to the size of ``--mp`` as in benchmarks/highres.py (default 12: 4000×3000).
The README's figures come from the lomiri photos listed there::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/fast_gap.py --photos PHOTO ...

(about 2 minutes per photo at 12 MP on one core, nearly all of it exact mode).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from highres import SIZES, fit, read_photo, sample_photos
from machine import describe

from exposure_slot import ExposureCorrector, evaluation
from exposure_slot.highres import fast


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """The evaluation's PSNR of two float (3, H, W) images in [0, 1]."""
    return evaluation.psnr(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy())


def gaps(
    corrector: ExposureCorrector, fp32: ExposureCorrector, x: torch.Tensor, proxies: list[int]
) -> list[dict]:
    """The PSNRs of the module docstring for one photo (3, H, W) and each proxy; ``fp32`` is
    the same network with every pass in float32."""
    exact = corrector(x, mode="exact")
    rows = []
    for long_side in proxies:
        size = fast.proxy_size(*x.shape[-2:], long_side=long_side)
        small_in = fast.downscale(x, size)
        small_net = corrector(small_in, mode="fast", proxy_size=long_side)  # the proxy pass
        small_fp32 = fp32(small_in, mode="fast", proxy_size=long_side)
        small_exact = fast.downscale(exact, size)
        rows.append(
            {
                "proxy": long_side,
                "network": psnr(small_net, small_exact),
                "transfer": psnr(fast.transfer(x, small_in, small_exact), exact),
                "fast": psnr(fast.transfer(x, small_in, small_net), exact),
                "fp32": psnr(fast.transfer(x, small_in, small_fp32), exact),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="*", type=Path, help="photo files (default: samples)")
    parser.add_argument("--mp", type=int, choices=sorted(SIZES), default=12, help="size in MP")
    parser.add_argument("--proxies", nargs="+", type=int, default=[640, 1024])
    parser.add_argument("--weights", default="default")
    args = parser.parse_args(argv)

    corrector = ExposureCorrector(args.weights, device="cpu")
    fp32 = ExposureCorrector(args.weights, device="cpu", dtype="float32")
    named = [(p.stem, read_photo(p)) for p in args.photos] if args.photos else sample_photos()
    width, height = SIZES[args.mp]
    print(describe())
    print(f"{width}×{height}, weights {args.weights}")
    print(f"proxy pass in {str(corrector.proxy_dtype).removeprefix('torch.')}")
    print(
        f"{'photo':36s} {'proxy':>5s} {'network':>8s} {'transfer':>8s} {'fast':>8s} "
        f"{'fp32 proxy':>10s}"
    )
    for name, rgb in named:
        start = time.perf_counter()
        x = torch.from_numpy(fit(rgb, (width, height))).permute(2, 0, 1).float() / 255
        for row in gaps(corrector, fp32, x, args.proxies):
            print(
                f"{name[:36]:36s} {row['proxy']:5d} {row['network']:8.2f} "
                f"{row['transfer']:8.2f} {row['fast']:8.2f} {row['fp32']:10.2f}",
                flush=True,
            )
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
