"""Every script in examples/ runs as a user would run it, with the default weights.

The scripts run in a new process in which the test extras (scikit-image, scikit-learn)
cannot be imported, as in a plain ``pip install exposure-slot``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from exposure_slot.files import read_image
from exposure_slot.samples import sample_path
from exposure_slot.visualize import TITLE_BAR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PLAIN_INSTALL = """
import runpy, sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("skimage", "sklearn"):
            raise ModuleNotFoundError(f"No module named {name!r} (plain install)")
sys.meta_path.insert(0, NotInstalled())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_example(name: str, *args: object, tmp: Path) -> subprocess.CompletedProcess:
    """Run ``examples/NAME`` as a plain install would; its temporary folders go below ``tmp``."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_INSTALL, str(EXAMPLES / name), *map(str, args)],
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


def test_quickstart_brightens_the_bundled_sample_photo(tmp_path):
    sample = sample_path().read_bytes()
    result = run_example("quickstart.py", tmp=tmp_path)
    target = wrote(result.stdout)
    assert target.is_relative_to(tmp_path) and target.name == "dim_bar_corrected.jpg"
    before = read_image(sample_path())
    after = read_image(target)
    assert after.rgb.shape == before.rgb.shape == (600, 800, 3)
    assert after.rgb.mean() > before.rgb.mean() + 0.05
    model = 0x0110  # EXIF camera model: the metadata came along
    assert Image.open(target).getexif()[model] == Image.open(sample_path()).getexif()[model]
    assert sample_path().read_bytes() == sample  # the sample itself is untouched


def test_quickstart_on_a_given_photo_and_folder(tmp_path):
    photo = tmp_path / "mine.png"
    Image.fromarray(data.astronaut()[::4, ::4] // 3).save(photo)
    result = run_example("quickstart.py", photo, tmp_path / "out", tmp=tmp_path)
    assert wrote(result.stdout) == tmp_path / "out" / "mine_corrected.png"
    assert Image.open(tmp_path / "out" / "mine_corrected.png").size == (128, 128)


def test_batch_folder_runs_on_its_own_sample_folder(tmp_path):
    result = run_example("batch_folder.py", tmp=tmp_path)
    assert "broken.jpg" in result.stderr and result.stdout.strip().endswith("done, 1 failed")
    out = next(tmp_path.rglob("out"))
    assert read_image(out / "party" / "bar_16bit.png").bit_depth == 16
    assert read_image(out / "bar.jpg").rgb.shape == (600, 800, 3)


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


def test_slot_maps_and_pipeline_run_on_the_sample_without_arguments(tmp_path):
    assert "level 1: 7 slots" in run_example("slot_maps.py", tmp=tmp_path).stdout
    result = run_example("pipeline_numpy_torch.py", tmp=tmp_path)
    assert "numpy: uint8 (600, 800, 3)" in result.stdout
    assert "torch: (1, 3, 600, 800) on" in result.stdout


def test_pipeline_runs_numpy_and_a_torch_batch(tmp_path):
    photos = []
    for name, image in (("a.png", data.astronaut()[::4, ::4]), ("b.png", data.coffee()[::4, ::4])):
        Image.fromarray(image).save(tmp_path / name)
        photos.append(tmp_path / name)
    result = run_example(
        "pipeline_numpy_torch.py", *photos, "--out", tmp_path / "out", tmp=tmp_path
    )
    assert "numpy: uint8 (128, 128, 3)" in result.stdout
    assert "torch: (2, 3, 100, 128) on" in result.stdout  # cropped to the common size
    assert "list: [(128, 128, 3), (64, 64, 3)]" in result.stdout
    for photo in photos:
        assert np.asarray(Image.open(tmp_path / "out" / f"{photo.stem}_batch.png")).shape == (
            100,
            128,
            3,
        )
    assert np.array_equal(np.asarray(Image.open(photos[0])), data.astronaut()[::4, ::4])
