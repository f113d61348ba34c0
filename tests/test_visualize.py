"""Slot pictures and montages, on real photos and the slot maps the network gives for them."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from exposure_slot.cli import main
from exposure_slot.errors import OptionError
from exposure_slot.files import from_uint, to_uint
from exposure_slot.visualize import (
    TITLE_BAR,
    correction_montage,
    fit_long_side,
    label_image,
    level_name,
    montage,
    overlay_slots,
    palette,
    slot_sheet,
    slot_stats,
    stack,
    to_pil,
)

PHOTO = from_uint(np.ascontiguousarray(data.astronaut()[30:126, 170:298]))  # 96×128


@pytest.fixture(scope="module")
def levels(corrector) -> list[np.ndarray]:
    return corrector.slot_maps(PHOTO).levels


@pytest.mark.parametrize("n", [1, 3, 7, 10])
def test_palette_colours_are_distinct_and_in_range(n):
    colours = palette(n)
    assert colours.shape == (n, 3) and colours.dtype == np.float32
    assert colours.min() >= 0 and colours.max() <= 1
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=2)
    assert (distances + np.eye(n)).min() > 0.15  # no two slots look alike


def test_label_image_paints_the_most_likely_slot(levels):
    for assignments in levels:
        picture = np.asarray(label_image(assignments))
        colours = to_uint(palette(assignments.shape[0]), 8)
        assert np.array_equal(picture, colours[assignments.argmax(axis=0)])


def test_overlay_tints_by_slot_and_keeps_a_dark_photo_readable(levels):
    sub = levels[1]
    bright = np.asarray(overlay_slots(PHOTO, sub), dtype=np.int16)
    assert bright.shape == (96, 128, 3)
    # Pixels of one brightness take their slot's colour: different slots, different tints.
    labels = sub.argmax(axis=0)
    assert len(np.unique(labels)) > 1
    flat = np.full_like(PHOTO, 0.5)
    tinted = np.asarray(overlay_slots(flat, sub))
    for slot in np.unique(labels):
        assert len(np.unique(tinted[labels == slot], axis=0)) == 1
    assert len(np.unique(tinted.reshape(-1, 3), axis=0)) == len(np.unique(labels))
    # The brightness is stretched: the same photo 10x darker shows the same picture.
    dark = np.asarray(overlay_slots(PHOTO * 0.1, sub), dtype=np.int16)
    assert np.abs(dark - bright).max() <= 1


def test_correction_montage_shows_input_corrected_and_every_level(corrector, levels):
    corrected = corrector(PHOTO)
    sheet = correction_montage(PHOTO, corrected, levels, height=96)
    assert sheet.size == (4 * 128, TITLE_BAR + 96)
    panels = np.asarray(sheet)[TITLE_BAR:]
    assert np.array_equal(panels[:, :128], np.asarray(to_pil(PHOTO)))
    assert np.array_equal(panels[:, 128:256], np.asarray(to_pil(corrected)))
    assert np.array_equal(panels[:, 256:384], np.asarray(overlay_slots(PHOTO, levels[0])))
    assert np.array_equal(panels[:, 384:], np.asarray(overlay_slots(PHOTO, levels[1])))
    titles = np.asarray(sheet)[:TITLE_BAR]
    for left in range(0, 512, 128):  # each panel has a title written above it
        assert (titles[:, left : left + 128] < 128).any()


def test_montage_scales_panels_to_one_height():
    wide, tall = to_pil(PHOTO), to_pil(PHOTO[:, :48])
    sheet = montage([wide, tall], ["wide", "tall"], height=48)
    assert sheet.size == (64 + 24, TITLE_BAR + 48)


def test_slot_sheet_has_a_row_per_level_with_a_legend(levels):
    sheet = slot_sheet(PHOTO, levels, height=96)
    assert sheet.size[1] == 2 * (TITLE_BAR + 96) and sheet.size[0] > 2 * 128 + 100
    labels = np.asarray(sheet)[2 * TITLE_BAR + 96 :, 128:256]
    assert np.array_equal(labels, np.asarray(label_image(levels[1])))
    legend = np.asarray(sheet)[2 * TITLE_BAR + 96 :, 256:]
    for colour in np.round(palette(levels[1].shape[0]) * 255).astype(np.uint8):
        assert (legend == colour).all(axis=2).sum() >= 25  # a swatch per sub-slot


def test_slot_stats_give_share_and_brightness_and_find_empty_slots():
    rgb = np.zeros((4, 6, 3), np.float32)
    rgb[:, :2] = 0.9  # a bright left third
    assignments = np.zeros((3, 4, 6), np.float32)
    assignments[0, :, :2] = 1  # slot 1: the bright third
    assignments[2, :, 2:] = 1  # slot 3: the dark rest; slot 2 holds no pixel
    stats = slot_stats(rgb, assignments)
    assert [s.empty for s in stats] == [False, True, False]
    assert stats[0].share == pytest.approx(1 / 3) and stats[2].share == pytest.approx(2 / 3)
    assert stats[0].brightness == pytest.approx(0.9, abs=1e-6) and stats[2].brightness == 0
    assert stats[1].brightness is None
    sheet = np.asarray(slot_sheet(rgb, [assignments], height=48))
    swatches = np.round(palette(3) * 255).astype(np.uint8)
    assert (sheet[TITLE_BAR:, 12:] == swatches[1]).all(axis=2).sum() >= 25  # empty slot listed


def test_stack_left_aligns_rows_on_white():
    rows = [Image.new("RGB", (30, 10), "black"), Image.new("RGB", (20, 5), "black")]
    sheet = np.asarray(stack(rows))
    assert sheet.shape == (15, 30, 3)
    assert (sheet[10:, 20:] == 255).all() and (sheet[10:, :20] == 0).all()


def test_fit_long_side_only_shrinks():
    assert fit_long_side(PHOTO, 64).shape == (48, 64, 3)
    assert fit_long_side(PHOTO, 500) is PHOTO
    assert np.isclose(fit_long_side(PHOTO, 64).mean(), PHOTO.mean(), atol=0.01)


def test_level_names():
    assert [level_name(i) for i in range(3)] == ["main", "sub", "sub-sub"]


@contextlib.contextmanager
def address_space_limit(extra: int) -> Iterator[None]:
    """Lower this process's soft RLIMIT_AS to its current size plus ``extra`` bytes (a
    real limit: larger allocations fail) for the duration of the block."""
    size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("height", ["12000", "100000"])
def test_slots_height_is_bounded(tmp_path, level2_path, capsys, height) -> None:
    """Panels 12000 pixels high took 20 GB; 100000 was killed by the OOM killer. Under an
    address-space limit of 1 GiB above the process's: a usage error, no picture."""
    source = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()[:96, :128]).save(source)
    argv = ["slots", str(source), "-o", str(tmp_path / "sheet.png"), "--height", height]
    main(["info", "--weights", str(level2_path)])  # imports done outside the limit
    with address_space_limit(2**30):
        assert main([*argv, "--weights", str(level2_path)]) == 2
    assert f"height {height} would make a slot sheet of" in capsys.readouterr().err
    assert not (tmp_path / "sheet.png").exists()


def test_a_long_thin_photo_cannot_make_a_huge_sheet(levels) -> None:
    thin = np.zeros((2, 30000, 3), np.float32)
    maps = [np.zeros((level.shape[0], 2, 30000), np.float32) for level in levels]
    with address_space_limit(2**30), pytest.raises(OptionError, match=r"height 320 .* 30000×2"):
        slot_sheet(thin, maps)  # it would be 6.6 G pixels
    with pytest.raises(OptionError, match="height must be a positive int"):
        slot_sheet(PHOTO, levels, height=0)
    sheet = slot_sheet(PHOTO, levels, height=1000)  # within the limit: drawn
    assert sheet.height == len(levels) * (1000 + TITLE_BAR)
