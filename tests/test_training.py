"""Training and fine-tuning as a user runs them: resumable, seeded, loadable, clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from exposure_slot import ExposureCorrector
from exposure_slot.evaluation import psnr
from exposure_slot.highres import fast
from exposure_slot.synthesis import make_pair
from exposure_slot.train_config import TrainConfig, parse_args
from exposure_slot.train_config import main as train_main
from exposure_slot.training import (
    Sampler,
    brightness_loss,
    build_model,
    list_pairs,
    list_photos,
    scale_consistency_loss,
)
from exposure_slot.weights import load_weights

FAST = ["--batch", "2", "--crop", "32", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photos (scikit-image samples) as JPEG files, one in a sub-folder."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    for name, path in [("astronaut", "a.jpg"), ("coffee", "b.jpg"), ("chelsea", "more/c.jpg")]:
        Image.fromarray(getattr(data, name)()).save(folder / path, quality=95)
    return folder


def _history(run: Path) -> list[dict]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["history"]


def test_train_resume_and_use_the_weights(photo_dir: Path, tmp_path: Path, astronaut) -> None:
    run = tmp_path / "run"
    assert train_main(["--photos", str(photo_dir), "--out", str(run), "--steps", "2", *FAST]) == 0
    assert [h["step"] for h in _history(run)] == [1, 2]
    assert train_main(["--photos", str(photo_dir), "--out", str(run), "--steps", "3", *FAST]) == 0
    assert [h["step"] for h in _history(run)] == [1, 2, 3]  # resumed, not restarted
    assert json.loads((run / "latest" / "config.json").read_text())["trained_steps"] == 3

    corrector = ExposureCorrector(run / "latest", device="cpu")
    out = corrector(astronaut[:64, :80])
    assert out.shape == (64, 80, 3) and out.dtype == np.uint8

    assert train_main(["--photos", str(photo_dir), "--out", str(run), "--steps", "1",
                       "--no-resume", *FAST]) == 0  # fmt: skip
    assert [h["step"] for h in _history(run)] == [1]


def test_same_seed_same_weights(photo_dir: Path, tmp_path: Path) -> None:
    states = []
    for name in ("a", "b"):
        run = tmp_path / name
        assert train_main(["--photos", str(photo_dir), "--out", str(run), "--steps", "2",
                           "--seed", "3", *FAST]) == 0  # fmt: skip
        states.append(load_weights(run / "latest")[0].state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_fine_tune_on_own_pairs_learns_them(tmp_path: Path, coffee) -> None:
    """Fine-tuning the default weights on a user's (input, target) pairs fits those pairs,
    including a look of the user's own (here a warm grade) that the default cannot know."""
    photo = coffee[::4, ::4].astype(np.float32) / 255  # 100 × 150
    graded = np.clip(photo * np.array([1.08, 1.0, 0.8], np.float32), 0, 1) ** 0.85
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    inputs.mkdir()
    targets.mkdir()
    for i in range(2):
        inp, _, _ = make_pair(photo, np.random.default_rng(i), "under")
        Image.fromarray(np.round(inp * 255).astype(np.uint8)).save(inputs / f"p{i}.png")
        Image.fromarray(np.round(graded * 255).astype(np.uint8)).save(targets / f"p{i}.png")
    dark = np.asarray(Image.open(inputs / "p0.png"))
    goal = np.asarray(Image.open(targets / "p0.png"))
    before = psnr(ExposureCorrector(device="cpu")(dark), goal)

    run = tmp_path / "run"
    argv = ["--init", "default", "--pairs", str(inputs), str(targets), "--out", str(run),
            "--steps", "40", "--batch", "2", "--crop", "64", "--lr", "1e-3", "--warmup", "5",
            "--checkpoint-every", "40"]  # fmt: skip
    assert train_main(argv) == 0
    after = psnr(ExposureCorrector(run / "latest", device="cpu")(dark), goal)
    assert after > before + 1.0  # measured 19.4 -> 21.8 dB


def test_missing_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code = train_main(["--photos", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "photo folder not found" in capsys.readouterr().err


def test_mild_fraction_out_of_range_is_a_usage_error(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main(
            ["--photos", str(photo_dir), "--out", str(tmp_path / "r"), "--mild-fraction", "2"]
        )
    assert exit_info.value.code == 2
    assert "--mild-fraction must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_max_side_sets_the_photo_scale(photo_dir: Path, capsys) -> None:
    """--max-side: photos are held at most that short side (the 512-px samples at 256), and
    a crop larger than it is a usage error."""
    config, _ = parse_args(["--photos", str(photo_dir), "--max-side", "256", "--crop", "64"])
    assert config.max_side == 256
    sampler = Sampler(config, np.random.default_rng(0))
    assert sorted(min(p.shape[:2]) for p in sampler.photos) == [256, 256, 256]
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--photos", str(photo_dir), "--max-side", "64", "--crop", "128"])
    assert exit_info.value.code == 2
    assert "--max-side must be at least the largest --crop (128)" in capsys.readouterr().err


def test_several_crop_sizes_keep_the_pixels_per_step(photo_dir: Path, tmp_path: Path) -> None:
    """--crop 32 64: steps at either size, four times fewer samples at the larger one."""
    config = TrainConfig(photos=(str(photo_dir),), crop=(32, 64), batch=4)
    sampler = Sampler(config, np.random.default_rng(0))
    shapes = {tuple(sampler.batch()[0].shape) for _ in range(20)}
    assert shapes == {(4, 3, 32, 32), (1, 3, 64, 64)}
    run = tmp_path / "run"
    argv = ["--photos", str(photo_dir), "--out", str(run), "--steps", "3", "--crop", "32", "64"]
    assert train_main([*argv, "--checkpoint-every", "1"]) == 0
    assert [h["step"] for h in _history(run)] == [1, 2, 3]


def test_freeze_bn_keeps_the_running_statistics(photo_dir: Path, tmp_path: Path) -> None:
    """--freeze-bn: BatchNorm normalises as at inference, so its statistics stay those of the
    initial weights while everything else trains; without it they follow the batches."""
    start = load_weights("default")[0].state_dict()
    stats = [k for k in start if k.startswith("bn") and "running" in k]
    changed = {}
    for flag in ([], ["--freeze-bn"]):
        run = tmp_path / f"run{len(flag)}"
        argv = ["--photos", str(photo_dir), "--out", str(run), "--steps", "2", "--init", "default"]
        assert train_main([*argv, *flag, *FAST]) == 0
        end = load_weights(run / "latest")[0].state_dict()
        changed[bool(flag)] = {
            k for k in start if not torch.equal(start[k].float(), end[k].float())
        }
    assert stats and not changed[True] & set(stats) and set(stats) <= changed[False]
    assert "conv_in.weight" in changed[True]


def test_scale_consistency_pulls_the_full_resolution_answer_to_the_proxy(photo_dir: Path) -> None:
    """Steps on the consistency loss bring the default network's answer on full-resolution
    crops closer to its answer on their 4x smaller versions as they were before the steps
    (the reference is held fixed), and the detail crops are taken at the held resolution,
    not resized. (Over many steps the loss alone also moves the small answer: training pairs
    it with the supervised loss.)"""
    config = TrainConfig(photos=(str(photo_dir),), init="default", max_side=256)
    sampler = Sampler(config, np.random.default_rng(1))
    details = [sampler.detail_input(96) for _ in range(3)]
    assert all(d.shape == (1, 3, 96, 96) for d in details)
    net = build_model(config).eval()
    with torch.no_grad():
        references = [net(fast.downscale(d, (24, 24))).image for d in details]

    def distance() -> float:
        with torch.no_grad():
            return sum(
                F.l1_loss(fast.downscale(net(d).image, (24, 24)), r).item()
                for d, r in zip(details, references, strict=True)
            )

    before = distance()
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    for _ in range(3):
        loss = sum(scale_consistency_loss(net, d, 4.0) for d in details)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert distance() < 0.9 * before  # measured 0.85 with the default weights


def test_anchor_is_a_frozen_copy_scored_on_every_batch(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    """``--anchor default`` from ``--init default``: on the first batch the network and its
    anchor are the same weights in the same (inference-mode BatchNorm) state, so the anchor
    term is exactly 0; afterwards the network has moved and the anchor has not, so it is
    positive. An anchor of the wrong level is a clear error."""
    run = tmp_path / "held"
    argv = ["--photos", str(photo_dir), "--init", "default", "--steps", "3", "--freeze-bn"]
    anchor = ["--anchor", "default", "--anchor-weight", "20"]
    consistency = ["--scale-consistency", "1", "--consistency-crop", "48"]
    assert train_main([*argv, *anchor, *consistency, *FAST, "--out", str(run)]) == 0
    history = _history(run)
    assert history[0]["anchor"] == 0.0
    assert all(h["anchor"] > 0 for h in history[1:])

    level3 = ["--photos", str(photo_dir), "--level", "3", "--steps", "1", *FAST, *anchor]
    assert train_main([*level3, "--out", str(tmp_path / "level3")]) == 2
    assert "--anchor weights are not a level-3 network" in capsys.readouterr().err


def test_scale_consistency_in_a_run_and_its_options(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    argv = ["--photos", str(photo_dir), "--out", str(run), "--steps", "2", *FAST]
    consistency = ["--scale-consistency", "0.5", "--consistency-crop", "48"]
    assert train_main([*argv, *consistency, "--freeze-bn"]) == 0
    assert all(h["consistency"] > 0 for h in _history(run))
    frozen = ["--scale-consistency", "1", "--freeze-bn"]
    for option, message in [
        (["--scale-consistency", "-1"], "--scale-consistency must be 0 or positive"),
        (["--consistency-crop", "50"], "--consistency-crop must be a multiple of 4"),
        ([*frozen, "--consistency-crop", "1024"], "from 24 to --max-side"),
        (["--scale-consistency", "1"], "--scale-consistency needs --freeze-bn"),
        (["--anchor-weight", "-1"], "--anchor-weight must be 0 or positive"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--photos", str(photo_dir), *option])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_crop_not_a_multiple_of_4_is_a_usage_error(photo_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--photos", str(photo_dir), "--out", str(tmp_path / "r"), "--crop", "64", "30"])
    assert exit_info.value.code == 2
    assert "--crop sizes must be positive multiples of 4" in capsys.readouterr().err


def test_broken_photo_is_named(tmp_path: Path, capsys) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = train_main(["--photos", str(tmp_path / "p"), "--out", str(tmp_path / "r"), *FAST])
    assert code == 1
    assert "broken.jpg" in capsys.readouterr().err


def test_cli_train_is_the_same_command(photo_dir: Path, tmp_path: Path) -> None:
    from exposure_slot.cli import main as cli_main

    run = tmp_path / "run"
    assert cli_main(["train", "--photos", str(photo_dir), "--out", str(run), "--steps", "1",
                     *FAST]) == 0  # fmt: skip
    assert (run / "latest" / "model.safetensors").is_file()


@pytest.mark.slow
def test_training_from_scratch_beats_the_input(photo_dir: Path, tmp_path: Path, coffee) -> None:
    """A short run from scratch already corrects held-out synthetic errors (about 2 min)."""
    run = tmp_path / "run"
    argv = ["--photos", str(photo_dir), "--out", str(run), "--steps", "300", "--batch", "4",
            "--crop", "64", "--lr", "5e-4", "--checkpoint-every", "100"]  # fmt: skip
    assert train_main(argv) == 0
    corrector = ExposureCorrector(run / "latest", device="cpu")
    photo = coffee[::2, ::2].astype(np.float32) / 255
    gains = []
    for seed in range(6):
        inp, target, _ = make_pair(photo, np.random.default_rng(100 + seed), "under")
        gains.append(psnr(corrector(inp), target) - psnr(inp, target))
    assert np.mean(gains) > 3.0


def test_snapshots_and_their_average(photo_dir: Path, tmp_path: Path) -> None:
    """--snapshot-every keeps step folders; scripts/average_weights.py averages them into a
    folder the corrector loads."""
    run = tmp_path / "run"
    args = ["--photos", str(photo_dir), "--out", str(run), "--steps", "4", "--snapshot-every", "2"]
    assert train_main([*args, *FAST]) == 0
    assert sorted(p.name for p in (run / "snap").iterdir()) == ["step2", "step4"]
    script = Path(__file__).resolve().parents[1] / "scripts" / "average_weights.py"
    snaps = [run / "snap" / "step2", run / "snap" / "step4"]
    subprocess.run([sys.executable, script, *snaps, "--out", tmp_path / "avg"], check=True)
    nets = [load_weights(folder)[0].state_dict() for folder in [*snaps, tmp_path / "avg"]]
    for key in (k for k, v in nets[0].items() if v.is_floating_point()):
        assert torch.allclose((nets[0][key] + nets[1][key]) / 2, nets[2][key], atol=1e-6), key
    assert any(not torch.equal(nets[0][key], nets[1][key]) for key in nets[0])
    assert json.loads((tmp_path / "avg" / "config.json").read_text())["averaged_steps"] == [2, 4]


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two HDR scenes as .npy radiance, a grey-green train scene and a pure red validation
    scene with a bright window each, and their split record."""
    from skimage import data

    folder = tmp_path_factory.mktemp("scenes")
    grass = cv2.resize(data.astronaut(), (96, 64)).astype(np.float32) / 255
    train = (grass**2.2) * np.array([0.6, 1.0, 0.6], np.float32)
    red = np.zeros((64, 96, 3), np.float32)
    red[..., 0] = 0.2 + 0.1 * np.linspace(0, 1, 96)
    for radiance in (train, red):
        radiance[:16, :24] *= 30.0
    np.save(folder / "train.npy", train.astype(np.float16))
    np.save(folder / "val.npy", red.astype(np.float16))
    with (folder / "split.csv").open("w") as handle:
        handle.write("file,split\ntrain.npy,train\nval.npy,val\n")
    return folder


def _red_share(sampler: Sampler, n: int = 24) -> float:
    """Share of samples whose target is red-dominant (only the validation scene is)."""
    targets = [sampler.sample(32)[1] for _ in range(n)]
    return float(np.mean([t[..., 0].mean() > 2 * t[..., 1].mean() for t in targets]))


def test_hdr_scenes_respect_the_split(scene_dir: Path) -> None:
    """With --hdr-list only train scenes are sampled; without it the held-out one is too."""
    config = TrainConfig(hdr=(str(scene_dir),), hdr_fraction=1.0)
    assert _red_share(Sampler(config, np.random.default_rng(0))) > 0.2
    config = TrainConfig(hdr=(str(scene_dir),), hdr_list=str(scene_dir / "split.csv"))
    sampler = Sampler(config, np.random.default_rng(0))
    assert [p.name for p in sampler.scene_paths] == ["train.npy"]
    assert _red_share(sampler) == 0.0


def test_hdr_samples_are_seeded_shaped_and_in_range(scene_dir: Path, photo_dir: Path) -> None:
    config = TrainConfig(photos=(str(photo_dir),), hdr=(str(scene_dir),), hdr_fraction=0.5)
    first = Sampler(config, np.random.default_rng(5)).batch()
    second = Sampler(config, np.random.default_rng(5)).batch()
    for a, b in zip(first, second, strict=True):
        assert a.shape == (8, 3, 128, 128) and a.dtype == torch.float32
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_train_on_hdr_scenes_from_the_command_line(scene_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--hdr", str(scene_dir), "--hdr-list", str(scene_dir / "split.csv"), *FAST]
    assert train_main(["--out", str(out), "--steps", "2", *args]) == 0
    assert len(_history(out)) == 2
    assert (out / "latest").is_dir()


def test_panoramas_are_cropped_not_squeezed(scene_dir: Path) -> None:
    """A 4:1 panorama is never resized whole into a square sample (it would be squeezed 4x):
    a sample shows at most two of its four quarters."""
    panorama = np.repeat(np.arange(4, dtype=np.float32), 64)[None, :, None] * np.ones((64, 1, 3))
    sampler = Sampler(
        TrainConfig(hdr=(str(scene_dir),), whole_fraction=1.0), np.random.default_rng(0)
    )
    for _ in range(20):
        (view,) = sampler._view(32, panorama.astype(np.float32))
        assert len(np.unique(np.round(view[..., 0]))) <= 2


@pytest.mark.parametrize("damage", ["flat", "empty", "truncated", "integers"])
def test_malformed_scene_file_is_named(tmp_path: Path, capsys, damage: str) -> None:
    """A scene file that is not HxWx3 float radiance (wrong shape, 0 bytes, cut short,
    integers) stops the run with the file's name, not a numpy traceback."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    path = scenes / "bad.npy"
    if damage == "flat":
        np.save(path, np.ones((8, 8), np.float32))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        np.save(path, np.ones((50, 50, 3), np.float32))
        path.write_bytes(path.read_bytes()[:500])
    else:
        np.save(path, np.ones((8, 8, 3), np.int64))
    assert train_main(["--out", str(tmp_path / "run"), "--hdr", str(scenes), *FAST]) == 1
    assert "bad.npy" in capsys.readouterr().err


def test_target_mean_range_re_exposes_low_and_high_key_photos(
    tmp_path: Path, photo_dir: Path
) -> None:
    """A dark photo's target is re-exposed up to the floor, a bright one down to the ceiling,
    one inside the range is left as it is."""
    from skimage import data

    dark = (data.coffee().astype(np.float32) * 0.25).astype(np.uint8)
    bright = (255 - (255 - data.coffee().astype(np.float32)) * 0.3).astype(np.uint8)
    Image.fromarray(data.astronaut()).save(tmp_path / "a_mid.png")
    Image.fromarray(bright).save(tmp_path / "b_bright.png")
    Image.fromarray(dark).save(tmp_path / "c_dark.png")
    luma = lambda im: float((im @ np.array([0.299, 0.587, 0.114])).mean())  # noqa: E731
    plain = Sampler(TrainConfig(photos=(str(tmp_path),)), np.random.default_rng(0)).photos
    ranged = TrainConfig(photos=(str(tmp_path),), target_min_mean=0.37, target_max_mean=0.55)
    moved = Sampler(ranged, np.random.default_rng(0)).photos
    assert luma(plain[2]) < 0.2 and abs(luma(moved[2]) - 0.37) < 0.01
    assert luma(plain[1]) > 0.7 and abs(luma(moved[1]) - 0.55) < 0.01
    np.testing.assert_array_equal(plain[0], moved[0])


def test_brightness_loss_counts_mean_luma_only() -> None:
    """Rearranging pixels costs nothing; a uniform offset of luma d costs d per sample, and
    its gradient brightens a too-dark output."""
    target = torch.rand(2, 3, 16, 16)
    shuffled = target.flatten(2)[..., torch.randperm(256)].reshape(2, 3, 16, 16)
    assert brightness_loss(shuffled, target).item() < 1e-6
    darker = (target - 0.1).requires_grad_()
    assert abs(brightness_loss(darker, target).item() - 0.1) < 1e-5
    brightness_loss(darker, target).backward()
    assert (darker.grad < 0).all()


def test_photo_record_holds_out_validation_photos(tmp_path: Path) -> None:
    """docs/training_photos.csv keeps at least 15 % of the photos out of training, and
    `--photo-list` with it never hands a validation photo to the trainer."""
    record = Path(__file__).resolve().parents[1] / "docs" / "training_photos.csv"
    with record.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    val = {r["file"] for r in rows if r["split"] == "val"}
    assert len(val) >= 0.15 * len(rows)
    source = Image.fromarray(np.full((8, 8, 3), 128, np.uint8))
    for row in rows:
        source.save(tmp_path / row["file"])
    trained = {p.name for p in list_photos([str(tmp_path)], str(record))}
    assert trained == {r["file"] for r in rows} - val


def test_photo_and_pair_folders_take_every_extension_the_reader_reads(tmp_path: Path) -> None:
    """The same files as the command line and eval: a PPM or a GIF is a photo; text is not."""
    source = Image.fromarray(np.full((8, 8, 3), 128, np.uint8))
    for folder in ("in", "gt"):
        (tmp_path / folder).mkdir()
        for name in ("a.ppm", "b.gif", "c.jpg"):
            source.save(tmp_path / folder / name)
        (tmp_path / folder / "notes.txt").write_text("not a photo")
    assert [p.name for p in list_photos([str(tmp_path / "in")], None)] == [
        "a.ppm",
        "b.gif",
        "c.jpg",
    ]
    pairs = list_pairs(str(tmp_path / "in"), str(tmp_path / "gt"))
    assert [(i.name, t.name) for i, t in pairs] == [(n, n) for n in ("a.ppm", "b.gif", "c.jpg")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_with_amp(photo_dir: Path, tmp_path: Path, astronaut) -> None:
    """On CUDA the trainer runs in float16 autocast with loss scaling; its losses and the
    weights it writes stay finite, and those weights load and correct a photo on the CPU."""
    run = tmp_path / "run"
    argv = ["--photos", str(photo_dir), "--out", str(run), "--steps", "4", "--device", "cuda"]
    assert train_main([*argv, *FAST]) == 0
    assert all(np.isfinite(h["loss"]) for h in _history(run))
    state = load_weights(run / "latest")[0].state_dict()
    assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    fixed = ExposureCorrector(str(run / "latest"), device="cpu")(astronaut)
    assert fixed.shape == astronaut.shape and fixed.dtype == np.uint8


BAD_OPTIONS = [
    ["--lr", "nan"],
    ["--lr", "0"],
    ["--steps", "0"],
    ["--steps", "-5"],
    ["--batch", "0"],
    ["--aux-weight", "inf"],
    ["--identity-fraction", "1.5"],
    ["--target-max-mean", "1.5"],
    ["--target-min-mean", "0.6", "--target-max-mean", "0.5"],
    ["--brightness-weight", "-1"],
] + ([] if torch.cuda.is_available() else [["--device", "cuda"]])


@pytest.mark.parametrize("option", BAD_OPTIONS, ids=" ".join)
def test_bad_numbers_and_devices_are_usage_errors(
    photo_dir: Path, tmp_path: Path, capsys, option: list[str]
) -> None:
    # Before: Adam's ValueError, an AssertionError from torch, or "weights written" untrained.
    with pytest.raises(SystemExit) as exit_info:
        run = ["--photos", str(photo_dir), "--out", str(tmp_path / "r"), "--steps", "1"]
        train_main([*run, *FAST, *option])
    assert exit_info.value.code == 2
    assert f"error: {option[0]}" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_checkpoint_that_cannot_be_resumed_is_a_clear_error(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    args = ["--photos", str(photo_dir), "--steps", "1", *FAST]
    assert train_main([*args, "--out", str(garbage)]) == 1
    error = capsys.readouterr().err
    assert f"cannot resume from {garbage / 'checkpoint.pt'}" in error
    assert "--no-resume" in error and "weights_only" not in error
    run = tmp_path / "run"
    assert train_main([*args, "--out", str(run)]) == 0  # a level-2 run
    assert train_main([*args, "--out", str(run), "--level", "3"]) == 2
    assert "level-2 run: --level 3 cannot resume it" in capsys.readouterr().err


def test_identity_samples_teach_leaving_good_photos_alone(scene_dir: Path, photo_dir: Path) -> None:
    """--identity-fraction: that share of samples has the target itself as input (scenes and
    photos alike); the others stay badly exposed, and 0 keeps seeded streams as they were."""
    config = TrainConfig(photos=(str(photo_dir),), hdr=(str(scene_dir),), identity_fraction=0.5)
    sampler = Sampler(config, np.random.default_rng(3))
    same = [np.array_equal(*sampler.sample(32)) for _ in range(40)]
    assert 0.25 < np.mean(same) < 0.75
    plain = TrainConfig(photos=(str(photo_dir),), hdr=(str(scene_dir),))
    first = Sampler(plain, np.random.default_rng(5)).batch()
    assert not any(torch.equal(a, b) for a, b in zip(*first, strict=True))
