"""Photos per second on a local Ray cluster (1 and 2 actors) against the command line.

Run as root: ``python benchmarks/ray_throughput.py [--count 8] [--size 4000x3000]`` (needs
the ``ray`` extra). The script runs itself inside a private network namespace (``unshare
-n``, loopback only), so the local cluster sends nothing beyond this machine. It writes
``--count`` JPEGs of the bundled sample photo, enlarged to ``--size``, corrects the folder
with ``exposure-slot correct`` and with ``exposure_slot.distributed.correct_files`` on 1 and
2 actors (``--gpus`` per actor on a GPU node), in one run, and prints photos per second and
the ratios. Cluster start-up is not counted; loading the weights in each actor is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import describe


def private_network() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    from exposure_slot.files import read_image
    from exposure_slot.samples import sample_path

    rgb = cv2.resize(read_image(sample_path()).rgb, size, interpolation=cv2.INTER_CUBIC)
    bgr = np.round(rgb[..., ::-1].clip(0, 1) * 255).astype(np.uint8)
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"photo{i:02d}.jpg"), np.roll(bgr, 37 * i, axis=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT")
    parser.add_argument("--gpus", type=float, default=0, help="GPUs per actor")
    args = parser.parse_args(argv)
    if not private_network():
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            sys.exit("run as root with unshare available: Ray must see only loopback")
        inner = f"ip link set lo up && exec {sys.executable} {' '.join(sys.argv)}"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        return subprocess.run(["unshare", "-n", "sh", "-c", inner], env=env).returncode
    import ray

    from exposure_slot.distributed import correct_files

    width, height = (int(v) for v in args.size.split("x"))
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        make_photos(inputs, args.count, (width, height))
        print(f"{args.count} JPEGs of {width}×{height} (the bundled sample, enlarged)", flush=True)
        rates = {}
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "exposure_slot", "correct", str(inputs), "-o", f"{tmp}/cli"]
        subprocess.run([*cmd, "-q"], check=True)
        rates["command line"] = args.count / (time.perf_counter() - start)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        for actors in (1, 2):
            start = time.perf_counter()
            rows = correct_files(
                [str(inputs)], f"{tmp}/ray{actors}", actors=actors, gpus_per_actor=args.gpus
            )
            assert all(row["status"] == "written" for row in rows), rows
            rates[f"Ray, {actors} actor(s)"] = args.count / (time.perf_counter() - start)
        ray.shutdown()
    base = rates["command line"]
    print("\n| how | photos/s | vs command line |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.3f} | {rate / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
