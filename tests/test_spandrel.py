"""spandrel: Exposure-slot weights load through spandrel's ModelLoader and give what the
library gives. spandrel needs torchvision, which has no build for the CPU-only torch 2.13
that the main test run uses: CI runs this file in a second environment (see .ci/run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

spandrel = pytest.importorskip("spandrel", exc_type=Exception)  # also torchvision's failures

from exposure_slot import ExposureCorrector  # noqa: E402
from exposure_slot.spandrel import ARCH_ID, install  # noqa: E402
from exposure_slot.weights import load_manifest  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def loader():
    install()
    install()  # twice is harmless
    return spandrel.ModelLoader()


def default_weights() -> Path:
    manifest = load_manifest()
    entry = manifest.entries[manifest.default]
    return entry.bundled_path / "model.safetensors"


def as_batch(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb, np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize(
    "weights", [default_weights(), DATA / "level2_seed0.pth", DATA / "level3_seed0.pth"]
)
def test_loaded_model_gives_the_corrector_s_output(loader, weights, astronaut):
    model = loader.load_from_file(weights)
    assert model.architecture.id == ARCH_ID and model.purpose == "Restoration"
    assert model.size_requirements.multiple_of == 4 and model.size_requirements.minimum == 8
    assert model.tiling == spandrel.ModelTiling.INTERNAL and model.scale == 1
    x = as_batch(astronaut[30:131, 170:321])  # 101×151: spandrel pads it, as we do
    with torch.inference_mode():
        got = model(x)
    expected = ExposureCorrector(weights, device="cpu", dtype="float32")(x, mode="exact")
    assert got.shape == x.shape and (got - expected).abs().max() < 1e-5


def test_half_precision_keeps_the_float32_islands(loader, astronaut):
    model = loader.load_from_file(default_weights())
    x = as_batch(astronaut[::4, ::4])
    with torch.inference_mode():
        full = model(x)
        model.bfloat16()
        half = model(x.bfloat16())
    assert model.model.block.attn.slots.slots_mu.dtype == torch.float32
    assert (half.float() - full).abs().mean() < 0.01


def test_other_architectures_are_not_taken_for_ours(loader):
    with pytest.raises(spandrel.UnsupportedModelError):
        loader.load_from_state_dict({"conv.weight": torch.zeros(8, 3, 3, 3)})
