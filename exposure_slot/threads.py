"""How many CPU threads to use, so that a busy machine never makes us slower than one thread.

PyTorch's OpenMP threads spin while they wait for each other. When another process holds
one of the cores, a thread that should run waits for its time slice while the others spin,
and a pass with one thread per core can take several times as long as with one thread
(``benchmarks/contention.py``). Two measures, both used by the command line:

* :func:`prefer_passive_wait`, before torch is imported: waiting threads sleep instead of
  spinning (``OMP_WAIT_POLICY=PASSIVE``), unless the user chose a policy;
* :class:`ThreadPolicy`, before each image: one thread per core that other processes left
  idle, measured from ``/proc/stat`` over the previous image (Linux; elsewhere torch's own
  default), or a fixed number the user gave.

Library users can do the same in their own process: set ``OMP_WAIT_POLICY=PASSIVE`` in the
environment before importing torch, and ``torch.set_num_threads(n)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .errors import OptionError

WAIT_POLICY = "OMP_WAIT_POLICY"
PROBE_SECONDS = 0.1
"""How long the first measurement watches the machine when there is no earlier image."""


def prefer_passive_wait() -> None:
    """Make OpenMP threads sleep while they wait, unless the environment already says.

    Takes effect only if called before torch (and its OpenMP runtime) is loaded.
    """
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def usable_cores() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Sample:
    """Busy CPU time of some CPUs, our own CPU time and the wall clock, all in seconds."""

    busy: float
    own: float
    wall: float


def sample(cpus: list[int]) -> Sample | None:
    """Busy time of ``cpus`` from ``/proc/stat``, or None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{n}" for n in cpus}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name in wanted:
            values = [int(v) for v in fields]
            busy += (
                sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
            )  # - idle, iowait
    return Sample(busy / ticks, time.process_time(), time.monotonic())


def others_busy(before: Sample, after: Sample) -> float:
    """How many cores other processes kept busy between two samples."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    return max(0.0, ((after.busy - before.busy) - (after.own - before.own)) / wall)


def threads_for(cores: int, busy_elsewhere: float) -> int:
    """One thread per core that other processes leave idle, at least one."""
    return max(1, min(cores, int(cores - busy_elsewhere + 0.5)))


class ThreadPolicy:
    """Sets torch's intra-op thread count before each image.

    ``threads`` fixes the count; None adapts it to what other processes use, measured since
    the previous :meth:`apply` (the first call watches the machine for
    :data:`PROBE_SECONDS`). Where ``/proc/stat`` is missing, torch's default stays.
    """

    def __init__(self, threads: int | None = None):
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise OptionError(f"threads must be a positive integer or None, not {threads!r}")
        self.fixed = threads
        self.cpus = usable_cores()
        self._last: Sample | None = None

    def apply(self) -> int:
        """Choose and set the thread count for the next image; returns it."""
        import torch

        if self.fixed is not None:
            torch.set_num_threads(self.fixed)
            return self.fixed
        now = sample(self.cpus)
        if now is None:
            return torch.get_num_threads()
        if self._last is None or now.wall - self._last.wall < PROBE_SECONDS / 2:
            time.sleep(PROBE_SECONDS)
            before, now = now, sample(self.cpus)
        else:
            before = self._last
        self._last = now
        threads = threads_for(len(self.cpus), others_busy(before, now))
        torch.set_num_threads(threads)
        return threads
