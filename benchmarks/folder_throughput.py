"""Photos per second of a folder: one photo at a time against the command line's folder run.

Run as ``python benchmarks/folder_throughput.py [--photos 20] [--megapixels 12] [--runs 1]``
on a quiet machine. A folder of JPEGs (quality 92) is made from the bundled sample photo,
each enlarged to the size asked for and varied (mirrored, shifted, brighter or darker), so
that no two are the same file. Each case runs in a fresh process that first loads the default
weights and corrects a small crop (not timed), then corrects the whole folder:

* one at a time: :func:`exposure_slot.batch.correct_file` for each file in turn, with torch's
  default threads (what a script calling the library file by file does);
* folder run: :func:`exposure_slot.batch.correct_files` as ``exposure-slot correct FOLDER``
  runs it (the next photo decoded while the current one is corrected, threads adapted to
  the idle cores before each photo);
* folder run, 2 workers: the same with ``--workers 2`` (two photos at once, one torch thread
  each).

Then the whole command line is timed as a process (start-up and loading the weights
included) with and without ``--workers 2``. OMP_WAIT_POLICY=PASSIVE everywhere, as the
command line sets it. Prints photos per second (median of ``--runs``), the ratio to one at a
time, the CPU time per photo, the peak memory of each process, the ceiling that the CPU time
per photo puts on any schedule, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from child import Usage, clean_env, measure

HERE = Path(__file__).resolve().parents[1]
CASES = ("one at a time", "folder run", "folder run, 2 workers")


def make_folder(folder: Path, photos: int, megapixels: float) -> None:
    """``photos`` JPEGs of about ``megapixels`` MP, 4:3, each a variation of the sample."""
    small = cv2.imread(str(HERE / "exposure_slot" / "sample_photos" / "dim_bar.jpg"))
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    big = cv2.resize(small, (width, width * 3 // 4), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(photos):
        photo = big[:, ::-1] if index % 2 else big
        photo = np.roll(photo, int(rng.integers(0, photo.shape[1])), axis=1)
        gain = float(rng.uniform(0.5, 1.6))
        photo = cv2.convertScaleAbs(photo, alpha=gain)
        cv2.imwrite(str(folder / f"photo_{index:02d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])


def worker(case: str, folder: Path, out: Path, result: Path) -> None:
    """In a fresh process: load the corrector, then time one case over the folder."""
    import resource

    from exposure_slot.threads import prefer_passive_wait

    prefer_passive_wait()
    from exposure_slot import ExposureCorrector
    from exposure_slot.batch import correct_file, correct_files
    from exposure_slot.threads import ThreadPolicy

    corrector = ExposureCorrector(device="cpu")
    corrector(np.zeros((256, 256, 3), np.uint8))  # warm-up: first-call allocations
    files = sorted(folder.iterdir())
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if case == "one at a time":
        for file in files:
            correct_file(file, out / file.name, corrector)
    else:
        workers = 2 if case.endswith("2 workers") else 1
        threads = ThreadPolicy(1 if workers > 1 else None)
        rows = correct_files([folder], out, corrector, threads=threads, workers=workers)
        assert all(row["status"] == "written" for row in rows), rows
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    result.write_text(json.dumps({"seconds": seconds, "cpu": used}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--megapixels", type=float, default=12)
    parser.add_argument("--runs", type=int, default=1, help="runs per case (median shown)")
    parser.add_argument("--worker", nargs=4, metavar=("CASE", "FOLDER", "OUT", "RESULT"))
    args = parser.parse_args(argv)
    if args.worker:
        case, *paths = args.worker
        worker(case, *map(Path, paths))
        return 0
    env = clean_env(PYTHONPATH=str(HERE), OMP_WAIT_POLICY="PASSIVE")
    with tempfile.TemporaryDirectory(prefix="folder-throughput-") as tmp:
        folder = Path(tmp) / "photos"
        make_folder(folder, args.photos, args.megapixels)
        seconds: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        usage: dict[str, list[Usage]] = {}
        for run in range(args.runs):
            for case in CASES:
                out, result = Path(tmp) / f"out_{run}_{len(case)}", Path(tmp) / "result.json"
                command = [sys.executable, __file__, "--worker", case, str(folder), str(out)]
                usage.setdefault(case, []).append(measure([*command, str(result)], env))
                timed = json.loads(result.read_text())
                seconds.setdefault(case, []).append(timed["seconds"])
                cpu.setdefault(case, []).append(timed["cpu"])
            for workers in ("1", "2"):
                case = f"command line, --workers {workers} (whole process)"
                out = Path(tmp) / f"cli_{run}_{workers}"
                command = [sys.executable, "-m", "exposure_slot", "correct", str(folder)]
                command += ["-o", str(out), "--workers", workers, "-q"]
                usage.setdefault(case, []).append(measure(command, env))
                seconds.setdefault(case, []).append(usage[case][-1].wall)
                cpu.setdefault(case, []).append(usage[case][-1].cpu)
    from machine import describe

    print(describe())
    print("(each case's process: OMP_WAIT_POLICY=PASSIVE, other OpenMP/MKL variables unset)")
    print(f"{args.photos} photos of {args.megapixels:g} MP; median of {args.runs} run(s)\n")
    print("| case | photos/s | vs one at a time | CPU s per photo | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    base = args.photos / statistics.median(seconds[CASES[0]])
    for case, times in seconds.items():
        rate = args.photos / statistics.median(times)
        per_photo = statistics.median(cpu[case]) / args.photos
        peak = statistics.median(u.peak_mib for u in usage[case])
        print(f"| {case} | {rate:.2f} | {rate / base:.2f}x | {per_photo:.2f} | {peak:.0f} |")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    least = min(statistics.median(cpu[case]) for case in CASES) / args.photos
    ceiling = (cores or 1) / least
    print(
        f"\nCPU s per photo: in-process cases the folder's work alone, command lines the whole "
        f"process. No schedule on {cores} core(s) passes {cores} / {least:.2f} = {ceiling:.2f} "
        f"photos/s ({ceiling / base:.2f}x one at a time) without less CPU per photo."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
