"""One child process measured on its own: wall time, user + system CPU time and peak memory.

``resource.getrusage(RUSAGE_CHILDREN)`` sums CPU time over all children and keeps the largest
peak RSS of any of them, so it cannot tell two runs apart; and a child forked from a large
process (one that has loaded torch) starts with that process's resident memory as its peak.
:func:`measure` therefore starts a small Python (this file) that runs the command and waits
for it with ``os.wait4``, which gives that child's own usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    """What one child process took."""

    wall: float
    """Seconds from start to exit."""
    cpu: float
    """User + system CPU seconds."""
    peak_mib: float
    """Peak resident memory (Linux reports ru_maxrss in KiB)."""


def measure(command: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Usage:
    """Run ``command`` to its end; its usage, or SystemExit with its stderr if it failed."""
    done = subprocess.run(
        [sys.executable, __file__, *command], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return Usage(**json.loads(done.stdout))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without OpenMP/MKL settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_"))}
    return {**env, **extra}


def _run(command: list[str]) -> int:
    """In the small process: run ``command``, print its usage as JSON, pass on its status."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": usage.ru_maxrss / 1024}))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(_run(sys.argv[1:]))
