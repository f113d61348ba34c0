"""The command line against an earlier revision: time, CPU and memory of whole processes.

Run as ``python benchmarks/cli_vs_previous.py [--previous REV] [--runs N] [--threads T]``.
A ``git worktree`` of REV (default 1dc9b83) is made in a temporary folder and removed at the
end; the other tree is the one this script lies in. A 24 MP JPEG (the bundled sample photo
enlarged to 6000×4000, quality 92) is corrected by ``python -m exposure_slot correct IN -o OUT
--threads T -q`` with PYTHONPATH pointing at each tree in turn, and ``python -m exposure_slot
--help`` is timed the same way (start-up alone). The runs alternate between the trees, so
that a change in the machine's load touches both alike. Prints, per tree and case, the median
wall time, user + system CPU time and peak resident memory of the child process, and the
machine (CPU model, flags, load): run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
from child import Usage, clean_env, measure
from machine import describe

HERE = Path(__file__).resolve().parents[1]
SIZE = (6000, 4000)
QUALITY = 92


def photo_file(folder: Path) -> Path:
    """The 24 MP JPEG: the bundled sample photo enlarged with cv2 (no exposure_slot code, so
    neither tree's decoder is involved in making it)."""
    small = cv2.imread(str(HERE / "exposure_slot" / "sample_photos" / "dim_bar.jpg"))
    path = folder / "photo_24mp.jpg"
    big = cv2.resize(small, SIZE, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return path


def cases(photo: Path, out: Path, threads: int) -> dict[str, list[str]]:
    module = [sys.executable, "-m", "exposure_slot"]
    correct = ["correct", str(photo), "-o", str(out), "--threads", str(threads), "-q"]
    return {"--help": [*module, "--help"], "correct 24 MP JPEG": [*module, *correct]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", default="1dc9b83", help="revision to compare with")
    parser.add_argument("--runs", type=int, default=5, help="runs per tree and case")
    parser.add_argument("--threads", type=int, default=2, help="correct --threads")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cli-vs-previous-") as tmp:
        folder = Path(tmp)
        previous = folder / "previous"
        subprocess.run(
            ["git", "-C", str(HERE), "worktree", "add", "--detach", str(previous), args.previous],
            check=True,
            capture_output=True,
        )
        try:
            trees = {f"previous ({args.previous})": previous, "this tree": HERE}
            photo = photo_file(folder)
            out = folder / "out.jpg"
            usage: dict[tuple[str, str], list[Usage]] = {}
            for _ in range(args.runs):
                for tree, root in trees.items():
                    env = clean_env(PYTHONPATH=str(root))
                    for case, command in cases(photo, out, args.threads).items():
                        usage.setdefault((tree, case), []).append(measure(command, env, folder))
                        out.unlink(missing_ok=True)
        finally:
            subprocess.run(
                ["git", "-C", str(HERE), "worktree", "remove", "--force", str(previous)],
                check=False,
            )
    print(describe())
    print("(the child processes: OpenMP/MKL variables unset)")
    print(f"median of {args.runs} run(s) per row; correct with --threads {args.threads}\n")
    print("| case | tree | wall s | CPU s (user+sys) | peak RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for (tree, case), runs in sorted(usage.items(), key=lambda item: item[0][::-1]):
        wall = statistics.median(u.wall for u in runs)
        cpu = statistics.median(u.cpu for u in runs)
        peak = statistics.median(u.peak_mib for u in runs)
        print(f"| {case} | {tree} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
