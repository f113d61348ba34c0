"""ONNX export: the exported graph run by ONNX Runtime gives what the library gives."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from exposure_slot import ExposureCorrector, MissingExtraError, OptionError, cli
from exposure_slot.export import export_onnx
from exposure_slot.weights import load_manifest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})


@pytest.mark.parametrize("level", [2, 3])
def test_exported_graph_matches_the_corrector_at_two_sizes(tmp_path, level, astronaut):
    weights = f"tests/data/level{level}_seed0.pth"
    path = export_onnx(weights, tmp_path / "model.onnx")
    corrector = ExposureCorrector(weights, device="cpu", dtype="float32")
    float64 = copy.deepcopy(corrector.net).double()
    photo = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
    for x in (photo[None, :, 100:164, 200:296], torch.stack([photo[:, :100, :52]] * 2)):
        corrected, *maps = run_onnx(path, np.ascontiguousarray(x.numpy()))
        expected = corrector(x, mode="exact").numpy()
        assert corrected.shape == expected.shape
        assert np.abs(corrected - expected).max() <= 1e-4
        # Soft slot maps: three softmax iterations per level amplify rounding, so that even
        # PyTorch's float32 maps differ from float64 ones by up to 3e-3 on the deepest level
        # of these random weights, and float32 runtimes summing in another order land a few
        # times that apart. The exported maps must be within 1e-4, or within 4× PyTorch's
        # own float32 error (a wrong layout or slot order is off by 0.1 and more).
        with torch.no_grad():
            ours = [m.numpy() for m in corrector.net(x).maps]
            exact = [m.numpy() for m in float64(x.double()).maps]
        assert len(maps) == level
        for got, mine, truth in zip(maps, ours, exact, strict=True):
            assert got.shape == (x.shape[0], truth.shape[1], x.shape[2] // 4, x.shape[3] // 4)
            error = np.abs(got.reshape(truth.shape) - truth).max()
            assert error <= max(1e-4, 4 * np.abs(mine - truth).max())


def test_metadata_names_the_weights_and_the_size_multiple(tmp_path):
    model = onnx.load(export_onnx("default", tmp_path / "default.onnx"))
    metadata = {p.key: p.value for p in model.metadata_props}
    entry = load_manifest().entries[load_manifest().default]
    assert metadata["weights"] == entry.name and metadata["size_multiple"] == "4"
    assert metadata["weights_sha256"] in {spec["sha256"] for spec in entry.files.values()}
    assert metadata["licence"] == entry.licence and metadata["opset"] == str(
        model.opset_import[0].version
    )


def test_an_existing_file_is_replaced_only_when_asked(tmp_path, capsys):
    target = tmp_path / "mine.onnx"
    target.write_bytes(b"someone else's model")
    argv = ["export", "tests/data/level2_seed0.pth", str(target)]
    assert cli.main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == b"someone else's model"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert onnx.load(target).graph.input[0].name == "image"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.onnx"]  # no temp file left
    with pytest.raises(OptionError, match=r"\.onnx"):
        export_onnx("tests/data/level2_seed0.pth", tmp_path / "model.bin")


def test_without_the_extra_the_error_names_it(tmp_path):
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from exposure_slot.export import export_onnx\n"
        f"export_onnx('tests/data/level2_seed0.pth', {str(tmp_path / 'm.onnx')!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "MissingExtraError" in done.stderr and "exposure-slot[onnx]" in done.stderr
    with pytest.raises(ImportError):  # what `except ImportError` in a user's code catches
        raise MissingExtraError("x")
