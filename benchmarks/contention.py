"""How a busy machine slows the corrector, per thread setting: the busy-machine table.

Run as ``python benchmarks/contention.py [--photo PHOTO] [--busy 0 1 3] [--runs 3]``. A 12 MP
8-bit photo (default: the bundled sample, enlarged to 4000×3000) is corrected with the default
settings (fast mode) in a fresh process per case, while 0, 1 or 3 other processes keep the
CPU busy (each a plain Python loop, as a browser tab or another worker would). The thread
settings compared: one torch thread; torch's default (one per core); the default with
``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead of spinning while they wait); the
default with a short spin before sleeping (``GOMP_SPINCOUNT``, libgomp's); and
then the ``exposure-slot correct`` command line with one thread and with its own defaults,
each run timed as a whole process (start-up, reading and writing the JPEG included). Prints
the median of ``--runs`` corrections per case (the command line: of ``--runs`` processes) and
each case's ratio to the one-thread time of its kind (library or command line) on the quiet
machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import describe

SIZE = (4000, 3000)
SETTINGS = {
    "1 torch thread": {"OMP_NUM_THREADS": "1"},
    "default threads": {},
    "default threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "default threads, GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}
"""Environment of each library case (on top of this process's, with the OpenMP variables
removed so that each case starts from torch's defaults)."""
CLI_SETTINGS = {
    "command line, 1 thread": {"OMP_NUM_THREADS": "1"},
    "command line, its defaults": {},
}
"""The same for ``exposure-slot correct`` (each run a whole process: start-up and JPEG I/O)."""


def spin() -> None:
    """Keep one core busy until killed."""
    while True:
        pass


def photo_file(folder: Path, source: Path | None) -> Path:
    """The 12 MP JPEG every case corrects."""
    from exposure_slot.files import read_image
    from exposure_slot.samples import sample_path

    rgb = read_image(source or sample_path()).rgb
    if source is None:
        rgb = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_CUBIC).clip(0, 1)
    path = folder / "photo.jpg"
    cv2.imwrite(
        str(path), np.round(rgb[..., ::-1] * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    return path


def worker(photo: Path, runs: int) -> None:
    """In a fresh process: load the corrector, then time ``runs`` corrections of the photo."""
    import torch

    from exposure_slot import ExposureCorrector

    rgb = np.ascontiguousarray(cv2.imread(str(photo))[..., ::-1])
    corrector = ExposureCorrector(device="cpu")
    corrector(rgb[:256, :256])  # warm-up: first-call allocations are not what we measure
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        corrector(rgb)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "threads": torch.get_num_threads()}))


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_"))}
    return {**env, **extra}


def library_case(photo: Path, runs: int, extra: dict[str, str]) -> float:
    cmd = [sys.executable, __file__, "--worker", str(photo), "--runs", str(runs)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(extra), check=False)
    if done.returncode:
        sys.exit(f"worker failed:\n{done.stderr}")
    return statistics.median(json.loads(done.stdout.splitlines()[-1])["times"])


def cli_case(photo: Path, runs: int, folder: Path, extra: dict[str, str]) -> float:
    times = []
    for i in range(runs):
        out = folder / f"cli_{time.monotonic_ns()}_{i}.jpg"
        cmd = [sys.executable, "-m", "exposure_slot", "correct", str(photo), "-o", str(out), "-q"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(extra))
        times.append(time.perf_counter() - start)
        if done.returncode:
            sys.exit(f"command line failed:\n{done.stderr}")
        out.unlink()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="an 8-bit photo (default: enlarged sample)")
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line case")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.runs)
        return 0
    print(describe())
    cases = [*SETTINGS, *([] if args.no_cli else CLI_SETTINGS)]
    results: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = photo_file(Path(tmp), args.photo)
        print(f"photo {args.photo or 'bundled sample enlarged'} at {SIZE[0]}×{SIZE[1]}, "
              f"median of {args.runs}", flush=True)  # fmt: skip
        for busy in args.busy:
            spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
            for process in spinners:
                process.start()
            try:
                for case in cases:
                    seconds = (
                        cli_case(photo, args.runs, Path(tmp), CLI_SETTINGS[case])
                        if case in CLI_SETTINGS
                        else library_case(photo, args.runs, SETTINGS[case])
                    )
                    results[busy, case] = seconds
                    print(f"  {busy} busy, {case}: {seconds:.2f} s", flush=True)
            finally:
                for process in spinners:
                    process.kill()
    bases = {
        case: results.get((0, next(iter(kind))))
        for kind in (SETTINGS, CLI_SETTINGS)
        for case in kind
    }
    print("\n| other busy processes | " + " | ".join(cases) + " |")
    print("|---|" + "---:|" * len(cases))
    for busy in args.busy:
        cells = []
        for case in cases:
            seconds = results[busy, case]
            base = bases[case]
            cells.append(f"{seconds:.2f} s" + (f" ({seconds / base:.2f}×)" if base else ""))
        print(f"| {busy} | " + " | ".join(cells) + " |")
    print("\n(×: time relative to one thread of the same kind on the quiet machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
