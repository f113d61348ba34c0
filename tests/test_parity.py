"""Our network against outputs of the authors' code (tests/data/*.npz, see its README)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA

from exposure_slot import ExposureCorrector
from exposure_slot.weights.convert import authors_to_ours, build_network, read_state_dict

SIZES = ("96x128", "90x122")  # the second is not a multiple of 4


def _final_maps(level: int, attn: np.ndarray) -> list[np.ndarray]:
    """The final-iteration assignments per level in the fixtures' channel layout."""
    if level == 2:
        return [attn[6:9], attn[23:30]]
    return [attn[0:3], attn[3:10], attn[10:20]]


@pytest.mark.parametrize("level", [2, 3])
@pytest.mark.parametrize("size", SIZES)
def test_output_matches_authors(level: int, size: str) -> None:
    ref = np.load(DATA / f"level{level}_seed0.npz")
    corrector = ExposureCorrector(DATA / f"level{level}_seed0.pth", device="cpu")
    out = corrector(ref[f"input_{size}"])
    assert out.dtype == np.float32
    assert np.abs(out - ref[f"output_{size}"]).max() <= 1e-4


@pytest.mark.parametrize("level", [2, 3])
@pytest.mark.parametrize("size", SIZES)
def test_slot_maps_match_authors(level: int, size: str) -> None:
    """Final slot maps match the authors' code.

    Main slots (and level 2's sub-slots) match to 1e-4. The deeper level-3 maps are
    ill-conditioned in float32: our float32 and float64 results differ by ~3e-3 there, and
    the authors' own code run on this machine differs from the fixture by the same 3.7e-3,
    so those levels are checked to 5e-3 (see README, "Parity").
    """
    ref = np.load(DATA / f"level{level}_seed0.npz")
    corrector = ExposureCorrector(DATA / f"level{level}_seed0.pth", device="cpu")
    maps = corrector.slot_maps(ref[f"input_{size}"]).native
    expected = _final_maps(level, ref[f"attn_{size}"])
    h, w = (int(s) for s in size.split("x"))
    assert len(maps) == level
    for i, (got, want) in enumerate(zip(maps, expected, strict=True)):
        assert got.shape == (want.shape[0], -(-h // 4), -(-w // 4))
        crop = want[:, : got.shape[1], : got.shape[2]]
        tolerance = 1e-4 if level == 2 or i == 0 else 5e-3
        assert np.abs(got - crop).max() <= tolerance, f"level {i}"


def test_level_and_slot_counts_are_read_from_shapes(level2_path, level3_path) -> None:
    net2 = build_network(read_state_dict(level2_path))
    net3 = build_network(read_state_dict(level3_path))
    assert net2.config.slot_counts == (3, 7)
    assert net3.config.slot_counts == (3, 7, 10)
    inference = [p for k, p in net2.named_parameters() if not k.startswith("slot_decoder")]
    # ARCHITECTURE.md: 1,227,844 used at inference, plus the 7×128 level-2 sub-slot prompts
    # that only the training-only slot map reads.
    assert sum(p.numel() for p in inference) == 1_227_844 + 7 * 128


@pytest.mark.parametrize("name", ["level2_seed0.pth", "level3_seed0.pth"])
def test_authors_table_drops_only_unused_tensors(name: str) -> None:
    authors = read_state_dict(DATA / name)
    ours = authors_to_ours(authors)
    unused = [
        k
        for k in authors
        if k.endswith("slots_logsigma")
        or k.startswith("conv_fusion.")
        or ("slot_list" in k and any(f".{n}." in k for n in ("to_k", "to_v", "norm_input")))
    ]
    assert len(ours) == len(authors) - len(unused)
    kept = {id(t) for t in ours.values()}
    assert all(id(authors[k]) not in kept for k in unused)
    assert not any(k.startswith(("TransformerBlock", "conv1_", "batchnorm")) for k in ours)


def test_float64_reference_is_close(level2_path, astronaut) -> None:
    """Our float32 pass is close to a float64 pass of the same network."""
    net = build_network(read_state_dict(level2_path))
    x = torch.from_numpy(astronaut[:128, :128].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        y32 = net(x).image
        y64 = net.double()(x.double()).image
    assert (y32.double() - y64).abs().max() < 1e-4
