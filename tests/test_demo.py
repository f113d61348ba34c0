"""The first run a newcomer makes: the bundled sample photo and ``exposure-slot demo``."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from exposure_slot import OptionError, cli
from exposure_slot.samples import SAMPLES, sample_path
from exposure_slot.visualize import TITLE_BAR


def test_every_sample_is_bundled_with_its_credits():
    credits = (sample_path().parent / "CREDITS.md").read_text(encoding="utf-8")
    for sample in SAMPLES.values():
        data = sample_path(sample.name).read_bytes()
        Image.open(sample_path(sample.name)).verify()
        assert sample.file in credits and sample.licence.split(" ")[0] in credits
        assert hashlib.sha256(data).hexdigest() in credits


def test_an_unknown_sample_is_an_option_error():
    with pytest.raises(OptionError, match="dim_bar"):
        sample_path("nope")


def test_demo_writes_a_before_after_picture_and_never_replaces_a_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--device", "cpu"]) == 0
    picture = np.asarray(Image.open(tmp_path / "before_after.jpg"))
    sample = np.asarray(Image.open(sample_path()))
    height, width = sample.shape[:2]
    assert picture.shape == (TITLE_BAR + height, 2 * width, 3)
    before, after = picture[TITLE_BAR:, :width], picture[TITLE_BAR:, width:]
    assert np.abs(before.astype(int) - sample).mean() < 3  # the photo as it was (JPEG)
    assert after.mean() > before.mean() + 10  # and brighter after
    assert "before_after.jpg" in capsys.readouterr().out

    first = (tmp_path / "before_after.jpg").read_bytes()
    assert cli.main(["demo", "--device", "cpu"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "before_after.jpg").read_bytes() == first


@pytest.mark.parametrize("argv", [["--sample", "nope"], ["-o", "picture.heic"]])
def test_demo_usage_errors_write_nothing(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", *argv]) == 2
    assert list(tmp_path.iterdir()) == []
