"""The command line starts without torch: parsing, ``--help``, ``--version`` and usage errors
load none of it (importing torch takes seconds of CPU); each command imports what it needs
when it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUN = (
    "import sys\n"
    "from exposure_slot.launch import main\n"
    "status = main(sys.argv[1:])\n"
    "print('torch loaded:', 'torch' in sys.modules, 'status:', status)\n"
)


def start(*argv: str) -> tuple[bool, int]:
    """Run ``exposure-slot ARGV`` in a new process: whether torch was loaded, and the status."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *argv], capture_output=True, text=True, timeout=300
    )
    words = done.stdout.split()[-4:]
    assert words[0] == "loaded:", done.stdout + done.stderr
    return words[1] == "True", int(words[3])


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--help"], 0),
        (["--version"], 0),
        (["info", "--help"], 0),
        (["demo", "--help"], 0),
        (["slots", "--help"], 0),
        (["convert", "--help"], 0),
        (["export", "--help"], 0),
        (["app", "--help"], 0),
        (["push", "--help"], 0),
        (["train", "--help"], 0),
        (["correct", "--help"], 0),
        (["eval", "--help"], 0),
        (["correct", "a.jpg", "-o", "out", "--strength", "3"], 2),
        (["correct", "a.jpg"], 2),  # no -o
        (["correct", "a.jpg", "-o", "out", "--threads", "0"], 2),
        (["correct", "a.jpg", "-o", "out", "--mode", "slow"], 2),
        (["train", "--crop", "30"], 2),
        (["train", "--steps", "0"], 2),
        (["frobnicate"], 2),
        ([], 2),
    ],
)
def test_no_torch_before_a_command_runs(argv, status):
    assert start(*argv) == (False, status)
