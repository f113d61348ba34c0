"""Shared fixtures: the parity checkpoints, real sample photos, the --runslow switch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
pytest_plugins = ("hub_server",)
sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


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
