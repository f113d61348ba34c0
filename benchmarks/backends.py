"""PyTorch against ONNX Runtime for the network's whole-image pass, on this CPU.

Run as ``python benchmarks/backends.py [--threads 1 2] [--rounds 5]`` (needs the ``onnx``
extra). On the bundled sample photo resized to 0.25 and 1 MP (multiples of 4), times one
whole-image pass of the default weights: PyTorch eager in float32 and in bfloat16 (the
precision of fast mode's proxy pass on CPUs with native bfloat16), ``ExposureCorrector`` in
exact mode (float32), and the exported ONNX graph in ONNX Runtime (float32), with the same
number of intra-op threads each. Prints the best of ``--rounds`` per case, each case's time
relative to PyTorch float32, and each output's largest difference to PyTorch float32.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import describe

from exposure_slot import ExposureCorrector
from exposure_slot.export import export_onnx
from exposure_slot.extras import require
from exposure_slot.files import read_image
from exposure_slot.samples import sample_path

SIZES = {"0.25 MP": (576, 432), "1 MP": (1152, 864)}


def best(run: Callable[[], np.ndarray], rounds: int) -> tuple[float, np.ndarray]:
    out = run()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def cases(
    x: torch.Tensor, corrector: ExposureCorrector, bf16: torch.nn.Module, session: object
) -> dict[str, Callable[[], np.ndarray]]:
    """Each backend's pass over ``x``, returning the clipped image as numpy."""

    def eager(net: torch.nn.Module, dtype: torch.dtype) -> np.ndarray:
        with torch.inference_mode():
            return net(x.to(dtype)).image.float().clamp(0, 1).numpy()

    return {
        "torch eager float32": lambda: eager(corrector.net, torch.float32),
        "torch eager bfloat16": lambda: eager(bf16, torch.bfloat16),
        "ExposureCorrector exact": lambda: corrector(x, mode="exact").numpy(),
        "onnxruntime float32": lambda: session.run(None, {"image": x.numpy()})[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    ort = require("onnxruntime", "onnx")
    print(describe())
    print(f"onnxruntime {ort.__version__}; best of {args.rounds}")
    corrector = ExposureCorrector(device="cpu", dtype="float32")
    bf16 = copy.deepcopy(corrector.net).set_precision(torch.bfloat16)
    photo = read_image(sample_path()).rgb
    print("| size | threads | backend | s | vs torch float32 | max diff |")
    print("|---|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        model = export_onnx("default", Path(tmp) / "model.onnx")
        for threads in args.threads:
            torch.set_num_threads(threads)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            for label, size in SIZES.items():
                rgb = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()

                runs = cases(x, corrector, bf16, session)
                results = {name: best(run, args.rounds) for name, run in runs.items()}
                base_time, base_out = results["torch eager float32"]
                for name, (seconds, out) in results.items():
                    diff = np.abs(out - base_out).max()
                    print(f"| {label} | {threads} | {name} | {seconds:.3f} | "
                          f"{seconds / base_time:.2f}× | {diff:.1e} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
