"""Tests of the evaluation protocol: metrics, baselines, pairing rules and evaluate()."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from exposure_slot.errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageTypeError,
    InvalidImageError,
    OptionError,
)
from exposure_slot.evaluation import (
    BASELINES,
    MSEC_GROUPS,
    Pair,
    auto_gamma,
    clahe,
    dataset_pairs,
    evaluate,
    find_pairs,
    group_of,
    identity,
    load_groups,
    psnr,
    ssim,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut().astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return data.coffee().astype(np.float64) / 255.0


def _skimage_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """skimage's SSIM with the MATLAB settings; its mean skips the 5-pixel padded margin,
    so its value is the 'valid' SSIM the authors compute."""
    return structural_similarity(
        pred * 255.0,
        target * 255.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )


def _save(path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path, quality=95)


# ------------------------------------------------------------------------------ PSNR


def test_psnr_of_one_level_offset_is_20_log10_255(astronaut):
    target = astronaut * (254.0 / 255.0)
    assert psnr(target + 1.0 / 255.0, target) == pytest.approx(48.1308036, abs=1e-6)


def test_psnr_matches_skimage_on_noisy_photo(astronaut):
    noisy = np.clip(astronaut + np.random.default_rng(0).normal(0, 0.03, astronaut.shape), 0, 1)
    expected = peak_signal_noise_ratio(astronaut * 255.0, noisy * 255.0, data_range=255)
    assert psnr(noisy, astronaut) == pytest.approx(expected, abs=1e-9)


def test_psnr_identical_is_inf(astronaut):
    assert psnr(astronaut, astronaut.copy()) == math.inf


def test_psnr_uint8_equals_float_scaled():
    img = data.chelsea()
    other = np.clip(img.astype(np.int16) + 7, 0, 255).astype(np.uint8)
    assert psnr(other, img) == pytest.approx(psnr(other / 255.0, img / 255.0), abs=1e-12)


def test_psnr_clips_out_of_range_prediction(astronaut):
    over = astronaut.copy()
    over[astronaut == 1.0] = 1.5
    over[astronaut == 0.0] = -0.5
    assert psnr(over, astronaut) == math.inf


def test_border_ignores_changes_in_the_frame(astronaut):
    framed = astronaut.copy()
    framed[:3] = 0.0
    framed[:, -3:] = 1.0
    assert math.isfinite(psnr(framed, astronaut))
    assert psnr(framed, astronaut, border=3) == math.inf
    assert ssim(framed, astronaut, border=3) == pytest.approx(1.0, abs=1e-12)
    assert ssim(framed, astronaut) < 0.999


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_metric_rejects_bad_inputs(metric, astronaut):
    with pytest.raises(InvalidImageError, match="shape"):
        metric(astronaut[:100], astronaut)
    with pytest.raises(ImageTypeError):
        metric(astronaut.tolist(), astronaut)
    with pytest.raises(ImageTypeError, match="dtype"):
        metric(astronaut > 0.5, astronaut > 0.5)
    nan = astronaut.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        metric(nan, astronaut)
    with pytest.raises(OptionError, match="border"):
        metric(astronaut, astronaut, border=-1)


# ------------------------------------------------------------------------------ SSIM


def test_ssim_identical_is_one(astronaut):
    assert ssim(astronaut, astronaut.copy()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda x, rng: np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1), id="noise"),
        pytest.param(lambda x, rng: x**2.2, id="gamma2.2"),
        pytest.param(lambda x, rng: x**0.45, id="gamma0.45"),
        pytest.param(lambda x, rng: np.clip(1.8 * x, 0, 1), id="overexposed"),
        pytest.param(lambda x, rng: 0.3 * x, id="underexposed"),
    ],
)
def test_ssim_matches_skimage_valid_region(change, astronaut, coffee):
    rng = np.random.default_rng(1)
    for photo in (astronaut, coffee):
        changed = change(photo, rng)
        assert ssim(changed, photo) == pytest.approx(_skimage_ssim(changed, photo), abs=1e-6)


def test_ssim_grayscale_matches_skimage(astronaut):
    gray = astronaut.mean(axis=2)
    dark = gray**1.8
    expected = structural_similarity(
        dark * 255,
        gray * 255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(dark, gray) == pytest.approx(expected, abs=1e-6)


def test_ssim_is_mean_of_channel_ssims(coffee):
    dark = coffee**1.7
    per_channel = [ssim(dark[..., c], coffee[..., c]) for c in range(3)]
    assert ssim(dark, coffee) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ssim_decreases_with_blur(astronaut):
    scores = [ssim(gaussian(astronaut, sigma=s, channel_axis=-1), astronaut) for s in (1, 2, 4)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_rejects_images_smaller_than_window():
    small = np.zeros((10, 40, 3))
    with pytest.raises(InvalidImageError, match="11"):
        ssim(small, small)


# ------------------------------------------------------------------------- baselines


def test_baselines_registry_and_output_format(coffee):
    assert set(BASELINES) == {"identity", "auto_gamma", "clahe"}
    for name, fn in BASELINES.items():
        out = fn(coffee.astype(np.float32))
        assert out.dtype == np.float32, name
        assert out.shape == coffee.shape, name
        assert out.min() >= 0.0 and out.max() <= 1.0, name


def test_identity_returns_same_values_in_a_new_array(coffee):
    src = coffee.astype(np.float32)
    out = identity(src)
    np.testing.assert_array_equal(out, src)
    assert out is not src


@pytest.mark.parametrize("exposure", [lambda x: 0.35 * x**1.4, lambda x: x**0.35])
def test_auto_gamma_brings_badly_exposed_photo_closer(exposure, astronaut):
    bad = exposure(astronaut)
    fixed = auto_gamma(bad)
    assert psnr(fixed, astronaut) > psnr(bad, astronaut) + 3.0
    weights = np.array([0.2126, 0.7152, 0.0722])
    assert abs((fixed @ weights).mean() - 0.5) < abs((bad @ weights).mean() - 0.5) / 2


@pytest.mark.parametrize("level", [0.1, 0.3, 0.7, 0.85])
def test_auto_gamma_sends_mean_gray_to_half(level):
    gray = np.full((8, 8, 3), level, np.float32)
    np.testing.assert_allclose(auto_gamma(gray), 0.5, atol=1e-5)


def test_auto_gamma_clamps_extreme_frames():
    black = auto_gamma(np.zeros((16, 16, 3), np.float32))
    white = auto_gamma(np.ones((16, 16, 3), np.float32))
    np.testing.assert_array_equal(black, 0.0)
    np.testing.assert_array_equal(white, 1.0)
    almost_black = np.full((16, 16, 3), 0.001, np.float32)
    assert auto_gamma(almost_black).max() == pytest.approx(0.001**0.2, rel=1e-5)


def test_clahe_raises_local_contrast_of_a_flat_photo(astronaut):
    flat = 0.4 + 0.2 * astronaut
    out = clahe(flat)
    assert out.std() > 1.5 * flat.std()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_clahe_keeps_a_uniform_gray_gray():
    out = clahe(np.full((64, 64, 3), 0.5, np.float32))
    assert np.ptp(out) < 1e-3
    assert np.abs(out[..., 0] - out[..., 2]).max() < 1e-3


def test_baselines_reject_non_rgb():
    with pytest.raises(InvalidImageError, match="H×W×3"):
        auto_gamma(np.zeros((8, 8), np.float32))


# --------------------------------------------------------------------------- pairing


def _msec_tree(root, bases=("a0001-jmac_DNG_12", "a0002-_DGW0236")):
    rng = np.random.default_rng(0)
    for base in bases:
        _save(root / "testing" / "expert_c_testing_set" / f"{base}.jpg", rng.random((16, 16, 3)))
        for ev in MSEC_GROUPS:
            _save(root / "testing" / "INPUT_IMAGES" / f"{base}_{ev}.JPG", rng.random((16, 16, 3)))
    return root


def test_find_pairs_msec_names_and_groups(tmp_path):
    root = _msec_tree(tmp_path)
    pairs = find_pairs(
        root / "testing" / "INPUT_IMAGES", root / "testing" / "expert_c_testing_set", layout="msec"
    )
    assert len(pairs) == 10
    by_name = {p.name: p for p in pairs}
    assert by_name["a0001-jmac_DNG_12_N1.5"].target_path.name == "a0001-jmac_DNG_12.jpg"
    assert by_name["a0002-_DGW0236_P1.5"].target_path.name == "a0002-_DGW0236.jpg"
    groups = {name: p.group for name, p in by_name.items() if name.startswith("a0001")}
    assert groups == {
        "a0001-jmac_DNG_12_N1.5": "under",
        "a0001-jmac_DNG_12_N1": "under",
        "a0001-jmac_DNG_12_0": "over",
        "a0001-jmac_DNG_12_P1": "over",
        "a0001-jmac_DNG_12_P1.5": "over",
    }
    assert [p.name for p in dataset_pairs(root, "msec")] == [p.name for p in pairs]


def test_find_pairs_msec_missing_target_and_bad_suffix(tmp_path):
    root = _msec_tree(tmp_path)
    (root / "testing" / "expert_c_testing_set" / "a0002-_DGW0236.jpg").unlink()
    with pytest.raises(ImageReadError, match="5 input"):
        dataset_pairs(root, "msec")
    _save(root / "other" / "a0001-jmac_DNG_12_P2.JPG", np.zeros((16, 16, 3)))
    with pytest.raises(OptionError, match="P2"):
        find_pairs(root / "other", root / "testing" / "expert_c_testing_set", layout="msec")


def test_find_pairs_sice_groups_from_folders(tmp_path):
    for folder in ("low", "over", "gt"):
        for stem in ("145", "581"):
            _save(tmp_path / "test" / folder / f"{stem}.JPG", np.full((16, 16, 3), 0.5))
    pairs = dataset_pairs(tmp_path, "sice")
    assert sorted((p.input_path.parent.name, p.name, p.group) for p in pairs) == [
        ("low", "145", "under"),
        ("low", "581", "under"),
        ("over", "145", "over"),
        ("over", "581", "over"),
    ]
    assert all(p.target_path == tmp_path / "test" / "gt" / f"{p.name}.JPG" for p in pairs)
    assert len(find_pairs(tmp_path / "test", tmp_path / "test" / "gt", layout="sice")) == 4


def test_find_pairs_lcdp_single_group(tmp_path):
    for folder in ("test-input", "test-gt"):
        _save(tmp_path / folder / "a4916-DSC_0069.png", np.full((16, 16, 3), 0.2))
    pairs = dataset_pairs(tmp_path, "lcdp")
    assert [(p.name, p.group) for p in pairs] == [("a4916-DSC_0069", "all")]


def test_find_pairs_plain_with_csv_and_json_groups(tmp_path):
    for stem in ("dark", "bright", "other"):
        _save(tmp_path / "in" / f"{stem}.png", np.zeros((16, 16, 3)))
        _save(tmp_path / "gt" / f"{stem}.jpg", np.zeros((16, 16, 3)))
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "groups.csv").write_text("name,group\ndark.png,under\nbright,over\n")
    (tmp_path / "groups.json").write_text(json.dumps({"dark": "under", "bright.png": "over"}))
    expected = {"dark": "under", "bright": "over", "other": "all"}
    for mapping in ("groups.csv", "groups.json"):
        pairs = find_pairs(tmp_path / "in", tmp_path / "gt", groups=tmp_path / mapping)
        assert {p.name: p.group for p in pairs} == expected
    assert load_groups(tmp_path / "groups.csv") == {"dark.png": "under", "bright": "over"}


def test_find_pairs_takes_every_extension_the_reader_reads(tmp_path):
    """The same files as the command line: a PPM or a GIF pairs like a PNG; text does not."""
    for stem, ext in (("a", ".ppm"), ("b", ".gif"), ("c", ".png")):
        _save(tmp_path / "in" / f"{stem}{ext}", np.zeros((16, 16, 3)))
        _save(tmp_path / "gt" / f"{stem}.png", np.zeros((16, 16, 3)))
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    assert sorted(p.name for p in find_pairs(tmp_path / "in", tmp_path / "gt")) == ["a", "b", "c"]


def test_find_pairs_rejects_ambiguous_targets_and_bad_options(tmp_path):
    _save(tmp_path / "in" / "x.png", np.zeros((16, 16, 3)))
    _save(tmp_path / "gt" / "x.png", np.zeros((16, 16, 3)))
    _save(tmp_path / "gt" / "x.jpg", np.zeros((16, 16, 3)))
    with pytest.raises(ImageReadError, match="ambiguous"):
        find_pairs(tmp_path / "in", tmp_path / "gt")
    with pytest.raises(OptionError, match="layout"):
        find_pairs(tmp_path / "in", tmp_path / "gt", layout="fivek")
    with pytest.raises(OptionError, match="plain"):
        find_pairs(tmp_path / "in", tmp_path / "gt", layout="lcdp", groups={"x": "under"})
    with pytest.raises(ImageReadError, match="not found"):
        find_pairs(tmp_path / "nope", tmp_path / "gt")
    with pytest.raises(OptionError, match="unknown dataset"):
        dataset_pairs(tmp_path, "msec", split="dev")


def test_group_of_rules():
    assert group_of("x/a1-b_c_N1.JPG", "msec") == "under"
    assert group_of("x/a1-b_c_0.JPG", "msec") == "over"
    assert group_of("SICE/test/over/4.JPG", "sice") == "over"
    assert group_of("LCDP/test-input/a.png", "lcdp") == "all"
    assert group_of("in/a.png", "plain", {"a": "under"}) == "under"
    with pytest.raises(OptionError, match="low"):
        group_of("SICE/test/gt/4.JPG", "sice")


# -------------------------------------------------------------------------- evaluate


@pytest.fixture
def exposure_folder(tmp_path):
    """Photos (crops, to keep it fast) darkened and brightened, ground truth = the photo."""
    photos = {
        "astronaut": data.astronaut()[96:352, 128:384],
        "coffee": data.coffee()[72:328, 172:428],
        "chelsea": data.chelsea()[22:278, 98:354],
    }
    groups = {}
    for name, photo in photos.items():
        gt = photo / 255.0
        _save(tmp_path / "gt" / f"{name}_dark.png", gt)
        _save(tmp_path / "gt" / f"{name}_bright.png", gt)
        _save(tmp_path / "in" / f"{name}_dark.png", 0.3 * gt**1.3)
        _save(tmp_path / "in" / f"{name}_bright.png", gt**0.4)
        groups[f"{name}_dark"] = "under"
        groups[f"{name}_bright"] = "over"
    return find_pairs(tmp_path / "in", tmp_path / "gt", groups=groups)


def test_evaluate_table_and_ranking(exposure_folder):
    methods = {"identity": identity, "auto_gamma": auto_gamma}
    results = evaluate(methods, exposure_folder, progress=False)
    assert results.groups == ("under", "over", "all")
    summary = results.summary()
    assert summary["identity"]["under"].count == 3
    assert summary["identity"]["all"].count == 6
    assert summary["auto_gamma"]["under"].psnr > summary["identity"]["under"].psnr + 3.0
    assert summary["auto_gamma"]["under"].ssim > summary["identity"]["under"].ssim
    identity_under = [
        s.psnr for s in results.scores if s.method == "identity" and s.group == "under"
    ]
    assert summary["identity"]["under"].psnr == pytest.approx(np.mean(identity_under))

    table = results.table()
    lines = table.splitlines()
    assert len(lines) == 4
    assert "under (n=3) PSNR" in lines[0] and "over (n=3) PSNR" in lines[0]
    assert "all (n=6) PSNR" in lines[0]
    assert lines[2].startswith("| identity |") and lines[3].startswith("| auto_gamma |")
    assert f"{summary['auto_gamma']['all'].psnr:.2f}" in lines[3]
    plain = results.table(markdown=False)
    assert "|" not in plain and len(plain.splitlines()) == 3

    payload = json.loads(results.to_json())
    assert payload["summary"]["auto_gamma"]["over"]["count"] == 3
    assert len(payload["images"]) == 12


def test_evaluate_single_callable_and_scores_match_metrics(exposure_folder):
    pair = exposure_folder[0]
    results = evaluate(auto_gamma, [pair], progress=False)
    assert results.methods == ("auto_gamma",)
    rgb = np.asarray(Image.open(pair.input_path).convert("RGB")) / 255.0
    gt = np.asarray(Image.open(pair.target_path).convert("RGB")) / 255.0
    (score,) = results.scores
    assert score.psnr == pytest.approx(psnr(auto_gamma(rgb), gt), abs=1e-4)
    assert score.ssim == pytest.approx(ssim(auto_gamma(rgb), gt), abs=1e-5)


def test_evaluate_reports_output_and_target_brightness(exposure_folder):
    """Each score and group mean carries the mean luma of the output and of the target, so a
    method that is merely too dark shows as such (identity on under-exposed photos)."""
    results = evaluate(
        {"identity": identity, "auto_gamma": auto_gamma}, exposure_folder, progress=False
    )
    for score, pair in zip(results.scores[::2], exposure_folder, strict=True):
        rgb = np.asarray(Image.open(pair.input_path).convert("RGB")) / 255.0
        gt = np.asarray(Image.open(pair.target_path).convert("RGB")) / 255.0
        luma = np.array([0.2126, 0.7152, 0.0722])
        assert score.luma == pytest.approx((rgb @ luma).mean(), abs=1e-6)
        assert score.target_luma == pytest.approx((gt @ luma).mean(), abs=1e-6)
    summary = results.summary()
    assert summary["identity"]["under"].luma < summary["identity"]["under"].target_luma - 0.1
    assert summary["auto_gamma"]["under"].luma > summary["identity"]["under"].luma + 0.1
    assert json.loads(results.to_json())["summary"]["identity"]["under"]["luma"] > 0


def test_evaluate_resizes_mismatched_target_and_says_so(tmp_path, coffee):
    _save(tmp_path / "in" / "c.png", coffee[::2, ::2])
    _save(tmp_path / "gt" / "c.png", coffee)
    pairs = find_pairs(tmp_path / "in", tmp_path / "gt")
    with pytest.warns(UserWarning, match="resized"):
        results = evaluate(identity, pairs, progress=False)
    assert results.notes == ("c.png: target 600x400 resized to input size 300x200",)
    assert results.scores[0].psnr > 25.0


def test_evaluate_resize_long_side(tmp_path, coffee):
    _save(tmp_path / "in" / "c.png", coffee)
    _save(tmp_path / "gt" / "c.png", coffee)
    seen = []

    def record(rgb):
        seen.append(rgb.shape)
        return rgb

    evaluate(record, find_pairs(tmp_path / "in", tmp_path / "gt"), resize_long_side=150)
    assert seen == [(100, 150, 3)]


def test_evaluate_rejects_bad_method_output_and_options(exposure_folder):
    with pytest.raises(InvalidImageError, match="half"):
        evaluate({"half": lambda x: x[::2]}, exposure_folder[:1], progress=False)
    with pytest.raises(OptionError):
        evaluate({}, exposure_folder)
    with pytest.raises(OptionError, match="resize_long_side"):
        evaluate(identity, exposure_folder, resize_long_side=4)
    with pytest.raises(OptionError, match="no image pairs"):
        evaluate(identity, [])


def test_evaluate_unreadable_image(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"not a png")
    _save(tmp_path / "gt" / "x.png", np.zeros((16, 16, 3)))
    with pytest.raises(ImageReadError, match=r"x\.png"):
        evaluate(identity, [Pair(tmp_path / "in" / "x.png", tmp_path / "gt" / "x.png")])


def test_evaluate_reports_decompression_bomb_as_too_large(tmp_path, monkeypatch):
    _save(tmp_path / "in" / "x.png", np.zeros((64, 64, 3)))
    _save(tmp_path / "gt" / "x.png", np.zeros((64, 64, 3)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageTooLargeError, match=r"x\.png"):
        evaluate(identity, find_pairs(tmp_path / "in", tmp_path / "gt"), progress=False)
