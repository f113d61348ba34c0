"""The command line's entry point: sets the thread policy before torch loads, then runs it.

``exposure-slot`` and ``python -m exposure_slot`` start here. OpenMP reads its wait policy
once, when torch loads it, so :func:`~exposure_slot.threads.prefer_passive_wait` must come
before anything imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from .threads import prefer_passive_wait


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (see :mod:`exposure_slot.cli`); returns the exit status."""
    prefer_passive_wait()
    from .cli import main as run

    return run(argv)
