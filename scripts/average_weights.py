"""Average the weights of several checkpoints of one run (stochastic weight averaging).

Checkpoints taken late in a run with a cosine schedule scatter around a minimum (on CPU
with batch 8, the synthetic validation score moves by 1-3 dB from one snapshot to the next);
their element-wise mean usually sits nearer its centre. Run as::

    python scripts/average_weights.py runs/v2/snap/step2400 runs/v2/snap/step2700 \\
        runs/v2/latest --out runs/v2/swa

Every folder must hold the same architecture (``model.safetensors`` + ``config.json``). The
result is a normal weights folder in float32 whose ``config.json`` records the sources.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from exposure_slot.errors import WeightsError
from exposure_slot.weights.convert import CONFIG_NAME, load_folder, save_folder


def average(folders: list[Path], out: Path) -> Path:
    """Write the mean of the weights in ``folders`` to ``out``; returns ``out``."""
    nets = [load_folder(folder) for folder in folders]
    first = nets[0]
    if any(net.config != first.config for net in nets[1:]):
        raise WeightsError("the folders hold different architectures; cannot average them")
    states = [net.state_dict() for net in nets]
    mean = {
        key: torch.stack([s[key].float() for s in states]).mean(0)
        for key, tensor in states[0].items()
        if tensor.is_floating_point()
    }
    first.load_state_dict(mean, strict=False)  # integer buffers (counters) stay the first's
    steps = [json.loads((f / CONFIG_NAME).read_text()).get("trained_steps") for f in folders]
    sources = {"averaged_from": [str(f) for f in folders], "averaged_steps": steps}
    trained = max((s for s in steps if s is not None), default=None)
    return save_folder(first, out, extra_config={"trained_steps": trained, **sources})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="weights folders of one run")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args()
    if len(args.folders) < 2:
        parser.error("give at least two folders to average")
    folder = average(args.folders, args.out)
    print(f"averaged {len(args.folders)} checkpoints into {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
