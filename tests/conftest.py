"""Shared fixtures: the parity checkpoints, real sample photos, the --runslow switch.

Also the test process's threads: pytest imports this file before any test module, so the
OpenMP wait policy set here is in place before torch loads. Waiting threads then sleep
instead of spinning, which on a machine shared with other work is what keeps the suite's
CPU time and wall time bounded. The process runs torch on one thread unless
``OMP_NUM_THREADS`` says otherwise; subprocesses inherit the wait policy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if "torch" in sys.modules:  # a plugin imported torch first: the wait policy would be ignored
    raise RuntimeError("tests/conftest.py must be imported before torch")

from exposure_slot.threads import prefer_passive_wait

prefer_passive_wait()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

TEST_THREADS = int(os.environ.get("OMP_NUM_THREADS", "1"))
"""torch's intra-op threads in the test process; tests that change it put it back."""
torch.set_num_threads(TEST_THREADS)

DATA = Path(__file__).parent / "data"
pytest_plugins = ("hub_server",)
sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Put torch's thread count back after a test that changed it."""
    yield
    if torch.get_num_threads() != TEST_THREADS:
        torch.set_num_threads(TEST_THREADS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def level2_path() -> Path:
    return DATA / "level2_seed0.pth"


@pytest.fixture(scope="session")
def level3_path() -> Path:
    return DATA / "level3_seed0.pth"


@pytest.fixture(scope="session")
def corrector(level2_path: Path):
    """A CPU float32 corrector with the level-2 parity weights (no trained weights needed)."""
    from exposure_slot import ExposureCorrector

    return ExposureCorrector(level2_path, device="cpu")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()
