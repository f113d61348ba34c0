"""The thread policy: one thread per core that other processes leave idle."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from exposure_slot import OptionError
from exposure_slot.threads import (
    PROBE_SECONDS,
    Sample,
    ThreadPolicy,
    others_busy,
    sample,
    threads_for,
    usable_cores,
)


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 3.0, 1), (16, 1.0, 15), (1, 0, 1)],
)
def test_one_thread_per_idle_core_and_never_none(cores, busy, threads):
    assert threads_for(cores, busy) == threads


def test_our_own_cpu_time_is_not_counted_as_others():
    before, after = Sample(busy=10.0, own=3.0, wall=100.0), Sample(busy=12.0, own=4.8, wall=101.0)
    assert others_busy(before, after) == pytest.approx(0.2)
    assert others_busy(after, after) == 0


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat (Linux)")
def test_a_busy_process_takes_a_thread_away():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        before = sample(usable_cores())
        time.sleep(4 * PROBE_SECONDS)
        busy = others_busy(before, sample(usable_cores()))
        assert busy >= 0.7  # at least the spinner (other load only adds to it)
        policy = ThreadPolicy()
        threads = policy.apply()
        assert threads == torch.get_num_threads() <= max(1, len(usable_cores()) - 0.5)
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(len(usable_cores()))


def test_a_fixed_count_is_set_and_bad_counts_are_option_errors():
    before = torch.get_num_threads()
    try:
        assert ThreadPolicy(1).apply() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(OptionError, match="threads"):
            ThreadPolicy(bad)


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_passive_wait_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os; from exposure_slot.threads import prefer_passive_wait\n"
        "prefer_passive_wait(); print(os.environ['OMP_WAIT_POLICY'])"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == expected, done.stderr
