"""Correct a folder of photos on a Ray cluster, with a report of every file.

    python examples/ray_cluster.py [IN_DIR] [OUT_DIR] [--address ADDRESS] [--actors N]

Needs ``pip install "exposure-slot[ray]"``. Without IN_DIR, a small folder is made from the
package's sample photo (and one broken file). Without ``--address`` a local cluster is
started in this process; ``--address auto`` joins the cluster that ``ray start --head`` runs
on this machine, ``--address ray://HOST:10001`` a remote one (every node needs
exposure-slot installed, and IN_DIR/OUT_DIR must be paths every node can reach).
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import ray

from exposure_slot.distributed import correct_files
from exposure_slot.samples import sample_path

parser = argparse.ArgumentParser()
parser.add_argument("in_dir", nargs="?", type=Path)
parser.add_argument("out_dir", nargs="?", type=Path)
parser.add_argument("--address", help="Ray cluster to join (default: start a local one)")
parser.add_argument("--actors", type=int, default=2, help="correctors running at once")
args = parser.parse_args()

work = Path(tempfile.mkdtemp(prefix="exposure-slot-"))
if args.in_dir is None:
    args.in_dir = work / "in"
    (args.in_dir / "party").mkdir(parents=True)
    shutil.copyfile(sample_path(), args.in_dir / "bar.jpg")
    shutil.copyfile(sample_path(), args.in_dir / "party" / "bar_again.jpg")
    (args.in_dir / "broken.jpg").write_bytes(b"not a photo")
out_dir = args.out_dir or work / "out"

ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
rows = correct_files(
    [str(args.in_dir)], out_dir, recursive=True, actors=args.actors, report=work / "report.jsonl"
)
for row in rows:
    print(f"{row['status']:8s} {row['input']} -> {row['output']} {row['error']}")
print(f"wrote {work / 'report.jsonl'}")
