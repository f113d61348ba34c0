"""Every script in examples/ runs as a user would run it, with the default weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from exposure_slot.imageio import read_image
from exposure_slot.visualize import TITLE_BAR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: object, tmp: Path) -> subprocess.CompletedProcess:
    """Run ``examples/NAME`` in a new process; its temporary folders go below ``tmp``."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result


def wrote(stdout: str) -> Path:
    """The path after 'wrote ' on the example's last line."""
    return Path(stdout.strip().splitlines()[-1].removeprefix("wrote "))


def test_quickstart_brightens_its_dark_sample_photo(tmp_path):
    result = run_example("quickstart.py", tmp=tmp_path)
    target = wrote(result.stdout)
    assert target.is_relative_to(tmp_path) and target.name == "dark_coffee_corrected.jpg"
    before = read_image(target.with_name("dark_coffee.jpg")).rgb
    after = read_image(target).rgb
    assert after.shape == before.shape == (400, 600, 3)
    assert after.mean() > before.mean() + 0.05


def test_quickstart_on_a_given_photo_and_folder(tmp_path):
    photo = tmp_path / "mine.png"
    Image.fromarray(data.astronaut()[::4, ::4] // 3).save(photo)
    result = run_example("quickstart.py", photo, tmp_path / "out", tmp=tmp_path)
    assert wrote(result.stdout) == tmp_path / "out" / "mine_corrected.png"
    assert Image.open(tmp_path / "out" / "mine_corrected.png").size == (128, 128)


def test_batch_folder_mirrors_folders_and_goes_past_a_broken_file(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "trip").mkdir(parents=True)
    Image.fromarray(data.coffee()[::4, ::4]).save(inputs / "trip" / "coffee.png")
    Image.fromarray(data.astronaut()[::4, ::4]).save(inputs / "astronaut.jpg")
    (inputs / "broken.jpg").write_bytes(b"not a photo")
    result = run_example("batch_folder.py", inputs, tmp_path / "out", tmp=tmp_path)
    assert str(inputs / "broken.jpg") in result.stderr
    assert result.stdout.strip().endswith("done, 1 failed")
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")
    )
    assert written == ["astronaut.jpg", "trip/coffee.png"]


def test_slot_maps_writes_a_montage_and_an_overlay(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(data.chelsea()[::3, ::3]).save(photo)  # 100×151
    result = run_example("slot_maps.py", photo, tmp_path / "out", tmp=tmp_path)
    assert "level 0: 3 slots" in result.stdout and "level 1: 7 slots" in result.stdout
    assert Image.open(tmp_path / "out" / "sub_slots.png").size == (151, 100)
    montage = Image.open(tmp_path / "out" / "montage.jpg")
    assert montage.size == (4 * round(151 * 256 / 100), TITLE_BAR + 256)  # four panels


def test_pipeline_runs_numpy_and_a_torch_batch(tmp_path):
    photos = []
    for name, image in (("a.png", data.astronaut()[::4, ::4]), ("b.png", data.coffee()[::4, ::4])):
        Image.fromarray(image).save(tmp_path / name)
        photos.append(tmp_path / name)
    result = run_example(
        "pipeline_numpy_torch.py", *photos, "--out", tmp_path / "out", tmp=tmp_path
    )
    assert "numpy: uint8 (128, 128, 3)" in result.stdout
    assert "torch: (2, 3, 256, 256) on" in result.stdout
    assert "list: [(128, 128, 3), (100, 150, 3)]" in result.stdout
    batch = [np.asarray(Image.open(tmp_path / "out" / f"batch_{i}.png")) for i in range(2)]
    assert all(b.shape == (256, 256, 3) for b in batch)
