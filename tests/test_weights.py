"""Named weights and their manifest, integrity checks, untrusted files, conversion, model cards.

Hub downloads are tested over HTTP in ``test_hub_download.py``; here everything is local.
"""

from __future__ import annotations

import builtins
import hashlib
import itertools
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import exposure_slot
from exposure_slot import ExposureCorrector, ExposureSlotNet
from exposure_slot.cli import main
from exposure_slot.errors import (
    OptionError,
    WeightsError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from exposure_slot.weights import CONFIG_NAME, WEIGHTS_NAME, convert_checkpoint, load_manifest
from exposure_slot.weights.card import hub_licence
from exposure_slot.weights.convert import inference_state, save_folder
from exposure_slot.weights.manifest import MANIFEST_NAME, parse_manifest

PACKAGE = Path(exposure_slot.__file__).resolve().parent
REPO_ROOT = PACKAGE.parent
AUTHORS_FILES = [f"{d}_level{n}.pth" for d in ("SICE", "MSEC", "LCDP") for n in (2, 3)]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shipped() -> dict:
    return json.loads((PACKAGE / MANIFEST_NAME).read_text())


def _front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, re.DOTALL)
    assert match, "a model card starts with YAML front matter"
    return yaml.safe_load(match[1])


def _card_sha256(card: str) -> str:
    match = re.search(rf"sha256 of `{WEIGHTS_NAME}`: `([0-9a-f]{{64}})`", card)
    assert match, "the card states the checksum of the weights"
    return match[1]


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[100:164, 180:260])


# -- the manifest -----------------------------------------------------------------------------


def test_top_level_manifest_is_the_shipped_one() -> None:
    top = REPO_ROOT / MANIFEST_NAME
    if not top.exists():
        pytest.skip("not run from a source checkout")
    assert top.read_bytes() == (PACKAGE / MANIFEST_NAME).read_bytes()


def test_bundled_files_match_their_manifest_record() -> None:
    manifest = load_manifest()
    bundled = [e for e in manifest.entries.values() if e.bundled]
    assert manifest.get("default") in bundled
    for entry in bundled:
        assert entry.bundled_path == PACKAGE / entry.bundled
        assert {WEIGHTS_NAME, CONFIG_NAME} <= set(entry.files)
        for name, spec in entry.files.items():
            path = PACKAGE / entry.bundled / name
            assert path.stat().st_size == spec["size"], name
            assert _sha(path) == spec["sha256"], name
        config = json.loads((PACKAGE / entry.bundled / CONFIG_NAME).read_text())
        assert config["level"] == entry.level
        assert entry.licence and entry.training_data and "trained_steps" in entry.metrics


def test_authors_checkpoints_are_described_not_invented() -> None:
    entries = load_manifest().entries
    for filename in AUTHORS_FILES:
        dataset, level = filename[:4], int(filename[-5])
        entry = entries[f"authors-{dataset.lower()}-level{level}"]
        assert entry.level == level and entry.published_file == filename
        assert entry.published_at == "https://github.com/kdhRick2222/Exposure-slot"
        # No Hub location, file record or hash that we could not check.
        assert entry.repo_id is None and entry.revision is None and not entry.files
        assert entry.licence.startswith("unstated")
        assert dataset in entry.training_data and "research-only" in entry.training_data
        assert f"exposure-slot convert {filename}" in entry.how_to_get


@pytest.mark.parametrize("name", ["default", *_shipped()["weights"]])
def test_every_name_resolves(name: str, photo: np.ndarray) -> None:
    entry = load_manifest().get(name)
    if entry.published_at:
        with pytest.raises(WeightsNotFoundError) as info:
            ExposureCorrector.from_pretrained(name, device="cpu")
        message = str(info.value)
        assert entry.how_to_get in message and entry.published_at in message
        return
    corrector = ExposureCorrector.from_pretrained(name, device="cpu")
    info = corrector.weights_info
    assert (info.name, info.licence, corrector.level) == (entry.name, entry.licence, entry.level)
    assert info.sha256 == entry.sha256(WEIGHTS_NAME)
    out = corrector(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8


def _broken(change) -> dict:
    data = _shipped()
    change(data)
    return data


def _first_bundled(data: dict) -> dict:
    return data["weights"][data["default"]]


def _published(**values) -> dict:
    entry = {"level": 2, "licence": "Apache-2.0", "repo_id": "org/weights"}
    return {"schema": 1, "weights": {"hubbed": {**entry, **values}}}


@pytest.mark.parametrize(
    ("data", "names"),
    [
        (_broken(lambda d: d.update(schema=2)), ["schema 2"]),
        (_broken(lambda d: d.update(default="nope")), ["default 'nope'"]),
        (_broken(lambda d: _first_bundled(d).update(licnese="MIT")), ["licnese"]),
        (_broken(lambda d: _first_bundled(d).pop("licence")), ['"licence"']),
        (
            _broken(lambda d: _first_bundled(d)["files"][WEIGHTS_NAME].pop("sha256")),
            [WEIGHTS_NAME, "sha256"],
        ),
        (
            _broken(lambda d: _first_bundled(d)["files"][CONFIG_NAME].update(sha256="abc")),
            [CONFIG_NAME, "64"],
        ),
        (_published(revision="main", files={}), ["hubbed", "revision", "40-hex"]),
        (_published(revision="a" * 40, files={}), ["hubbed", WEIGHTS_NAME]),
        (
            _broken(lambda d: d["weights"]["authors-sice-level2"].pop("how_to_get")),
            ["authors-sice-level2", "how_to_get"],
        ),
    ],
    ids=[
        "schema",
        "default",
        "typo",
        "no-licence",
        "no-sha256",
        "short-sha256",
        "unpinned-revision",
        "no-files",
        "no-how-to-get",
    ],
)
def test_manifest_mistakes_are_named(data: dict, names: list[str]) -> None:
    with pytest.raises(WeightsError, match="invalid weights manifest") as info:
        parse_manifest(data)
    for name in names:
        assert name in str(info.value)


def test_unknown_manifest_file_and_name(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="no weights manifest"):
        ExposureCorrector.from_pretrained("open-level2", manifest=tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"bad\.json"):
        load_manifest(tmp_path / "bad.json")
    with pytest.raises(WeightsNotFoundError, match="not a name in"):
        ExposureCorrector.from_pretrained("no-such-weights", device="cpu")


def test_unknown_weights_option_is_named() -> None:
    with pytest.raises(OptionError, match="revison"):
        ExposureCorrector.from_pretrained("default", device="cpu", revison="abc")


# -- bundled weights are checked before use ---------------------------------------------------


@pytest.fixture
def bundled_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The default bundled folder and the shipped manifest, copied side by side into tmp."""
    entry = load_manifest().get("default")
    folder = tmp_path / entry.bundled
    shutil.copytree(PACKAGE / entry.bundled, folder)
    manifest = tmp_path / MANIFEST_NAME
    manifest.write_text(json.dumps(_shipped()))
    return folder, manifest


def test_a_copied_manifest_finds_its_own_bundled_folder(bundled_copy, photo) -> None:
    folder, manifest = bundled_copy
    copy = ExposureCorrector.from_pretrained("default", device="cpu", manifest=manifest)
    assert Path(copy.weights_info.source) == folder
    assert np.array_equal(copy(photo), ExposureCorrector(device="cpu")(photo))


def _flip_last_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # the file stays valid safetensors: only one weight value changes
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_flip_last_tensor_byte, ["sha256", "corrupted"]),
        (lambda p: p.write_bytes(p.read_bytes()[:-1000]), ["bytes", "truncated"]),
        (lambda p: p.unlink(), ["is missing"]),
    ],
    ids=["changed", "truncated", "missing"],
)
def test_damaged_bundled_weights_are_refused(bundled_copy, damage, words) -> None:
    folder, manifest = bundled_copy
    damage(folder / WEIGHTS_NAME)
    with pytest.raises(WeightsIntegrityError) as info:
        ExposureCorrector.from_pretrained("default", device="cpu", manifest=manifest)
    message = str(info.value)
    assert str(folder / WEIGHTS_NAME) in message and "nothing was loaded" in message
    assert all(word in message for word in words)


def test_changed_weights_would_load_without_the_check(bundled_copy) -> None:
    """The refusal above comes from the manifest check: the changed file itself is loadable."""
    folder, manifest = bundled_copy
    _flip_last_tensor_byte(folder / WEIGHTS_NAME)
    assert ExposureCorrector(folder, device="cpu").level == 2
    with pytest.raises(WeightsIntegrityError):
        ExposureCorrector.from_pretrained("default", device="cpu", manifest=manifest)


def test_changed_config_is_refused(bundled_copy) -> None:
    folder, manifest = bundled_copy
    config = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "iterations": 5}))
    with pytest.raises(WeightsIntegrityError, match=CONFIG_NAME):
        ExposureCorrector.from_pretrained("default", device="cpu", manifest=manifest)


# -- untrusted files --------------------------------------------------------------------------


class _RunsCode:
    """Unpickling this runs ``code``: what a malicious checkpoint does."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (builtins.exec, (self.code,))


def _write_pickle(path: Path, payload: object, how: str) -> None:
    if how == "torch-zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)


@pytest.mark.parametrize("how", ["torch-zip", "plain-pickle"])
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin", ".safetensors"])
def test_pickle_carrying_code_is_refused_without_running_it(
    tmp_path: Path, level2_path: Path, how: str, suffix: str
) -> None:
    marker = tmp_path / "code-ran"
    state = inference_state(ExposureCorrector(level2_path, device="cpu").net)
    payload = {"model": state, "hook": _RunsCode(f"open({str(marker)!r}, 'w').close()")}
    path = tmp_path / f"checkpoint{suffix}"
    _write_pickle(path, payload, how)
    # The payload is live: plain unpickling runs it.
    with open(path, "rb") as handle:
        torch.load(handle, weights_only=False) if how == "torch-zip" else pickle.load(handle)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(WeightsIntegrityError) as info:
        ExposureCorrector(path, device="cpu")
    assert str(path) in str(info.value)
    assert not marker.exists(), "loading weights must never run code from the file"


def test_plain_weights_only_checkpoint_still_loads(tmp_path: Path, level2_path: Path, photo):
    reference = ExposureCorrector(level2_path, device="cpu")
    path = tmp_path / "plain.pth"
    torch.save({"model": inference_state(reference.net)}, path)
    assert np.array_equal(ExposureCorrector(path, device="cpu")(photo), reference(photo))


def _saved_folder(tmp_path: Path, level2_path: Path) -> Path:
    return ExposureCorrector(level2_path, device="cpu").save_pretrained(tmp_path / "saved")


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path, level2_path) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    state = load_file(folder / WEIGHTS_NAME)
    state["head.weight_renamed"] = state.pop("head.weight")
    save_file(state, folder / WEIGHTS_NAME)
    with pytest.raises(WeightsError) as info:
        ExposureCorrector.from_pretrained(folder, device="cpu")
    message = str(info.value)
    assert "missing keys [head.weight]" in message
    assert "unexpected keys [head.weight_renamed]" in message


def test_wrong_tensor_shape_is_named(tmp_path, level2_path) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    state = load_file(folder / WEIGHTS_NAME)
    state["head.weight"] = torch.zeros(4, 32, 1, 1)
    save_file(state, folder / WEIGHTS_NAME)
    with pytest.raises(WeightsError, match=r"head\.weight \(4, 32, 1, 1\) != \(3, 32, 1, 1\)"):
        ExposureCorrector.from_pretrained(folder, device="cpu")


def test_config_that_contradicts_the_weights(tmp_path, level2_path) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    config = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "slot_counts": [3, 7, 10], "level": 3}))
    with pytest.raises(
        WeightsError, match=r"slot_counts \[3, 7, 10\] but the weights have \[3, 7\]"
    ):
        ExposureCorrector.from_pretrained(folder, device="cpu")


# -- converting the authors' checkpoints ------------------------------------------------------


@pytest.mark.parametrize("level", [2, 3])
def test_convert_gives_a_hub_ready_folder_with_the_same_outputs(
    tmp_path: Path, level: int, photo: np.ndarray, capsys
) -> None:
    checkpoint = Path(__file__).parent / "data" / f"level{level}_seed0.pth"
    out = tmp_path / "converted"
    assert main(["convert", str(checkpoint), str(out), "--repo-id", "me/exposure"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted"], "no temporary leftovers"
    assert {p.name for p in out.iterdir()} == {CONFIG_NAME, "README.md", WEIGHTS_NAME}

    original = ExposureCorrector(checkpoint, device="cpu")
    converted = ExposureCorrector.from_pretrained(out, device="cpu")
    assert np.array_equal(converted(photo), original(photo))

    tensors = load_file(out / WEIGHTS_NAME)
    expected = ExposureSlotNet(original.net.config).state_dict()
    assert set(tensors) == set(expected), "inference keys only, in our names"
    assert all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point())
    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["level"] == level and config["slot_counts"] == [3, 7, 10][:level]

    card = (out / "README.md").read_text()
    digest = _sha(out / WEIGHTS_NAME)
    assert _card_sha256(card) == digest and digest in capsys.readouterr().out
    front = _front_matter(card)
    assert front["library_name"] == "exposure-slot" and front["license"] == "other"
    assert f"level | {level}" in card and 'from_pretrained("me/exposure")' in card
    assert _sha(checkpoint) in card, "the card names the original file's checksum"


def test_authors_file_names_bring_their_licence_and_data(tmp_path: Path, level2_path) -> None:
    checkpoint = tmp_path / "MSEC_level2.pth"
    shutil.copyfile(level2_path, checkpoint)
    card = convert_checkpoint(checkpoint, tmp_path / "MSEC_level2")
    entry = load_manifest().get("authors-msec-level2")
    assert card.licence == entry.licence and card.training_data == (entry.training_data,)
    text = (tmp_path / "MSEC_level2" / "README.md").read_text()
    assert _front_matter(text)["license_name"] == "unstated"
    assert entry.training_data in text and entry.published_at in text
    # The same name on a checkpoint of another level is not taken for the authors' file.
    shutil.copyfile(level2_path, tmp_path / "MSEC_level3.pth")
    other = convert_checkpoint(tmp_path / "MSEC_level3.pth", tmp_path / "other", licence="MIT")
    assert other.licence == "MIT" and other.training_data == ()


def test_failed_convert_leaves_nothing_behind(tmp_path: Path, level2_path, capsys) -> None:
    broken = tmp_path / "in" / "SICE_level2.pth"
    broken.parent.mkdir()
    broken.write_bytes(level2_path.read_bytes()[:100_000])
    out = tmp_path / "out"
    assert main(["convert", str(broken), str(out)]) == 1
    assert str(broken) in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_convert_into_a_used_folder_replaces_only_its_own_files(tmp_path, level2_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / WEIGHTS_NAME).write_bytes(b"old")
    convert_checkpoint(level2_path, out)
    assert (out / "notes.txt").read_text() == "mine"
    assert ExposureCorrector(out, device="cpu").level == 2
    with pytest.raises(OptionError, match="not a folder"):
        convert_checkpoint(level2_path, out / "notes.txt")


# -- model cards --------------------------------------------------------------------------


def test_bundled_model_card_matches_the_manifest() -> None:
    for entry in load_manifest().entries.values():
        if not entry.bundled:
            continue
        card = (PACKAGE / entry.bundled / "README.md").read_text()
        front = _front_matter(card)
        assert {k: front.get(k) for k in ("license", "license_name")} == {
            "license_name": None,
            **hub_licence(entry.licence),
        }
        assert front["library_name"] == "exposure-slot"
        assert _card_sha256(card) == entry.sha256(WEIGHTS_NAME)
        assert f"# {entry.name}" in card and "## Training data" in card


# -- forged and damaged weights ----------------------------------------------------------------

LIMITED = """
import resource, sys
from pathlib import Path
from exposure_slot import ExposureCorrector
from exposure_slot.errors import WeightsError
size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.RLIM_INFINITY))
try:
    ExposureCorrector(sys.argv[1], device="cpu")
except WeightsError as exc:
    print("WeightsError:", exc)
"""


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_forged_width_is_refused_before_the_network_is_allocated(
    tmp_path: Path, level2_path: Path, suffix: str
) -> None:
    """A small file whose slots_mu claims width 8192 (a network of tens of GB): refused
    from the shapes, under an address-space limit of 1 GiB above the process's."""
    state = inference_state(ExposureCorrector(level2_path, device="cpu").net)
    state["block.attn.slots.slots_mu"] = torch.zeros(1, 3, 4 * 8192)
    path = tmp_path / f"forged{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WeightsError: width must be an int from 1 to 256, not 8192" in done.stdout


def test_shapes_are_checked_before_the_network_is_allocated(tmp_path, level2_path) -> None:
    """A width within the limits that the other tensors contradict: the shape error, and
    no network of that width was ever built."""
    folder = _saved_folder(tmp_path, level2_path)
    state = load_file(folder / WEIGHTS_NAME)
    state["block.attn.slots.slots_mu"] = torch.zeros(1, 3, 4 * 256)
    save_file(state, folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).unlink()
    built = []
    original = ExposureSlotNet.__init__

    def spy(self, config=None, **kwargs):
        built.append(torch.get_default_device().type)
        original(self, config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ExposureSlotNet, "__init__", spy)
        with pytest.raises(WeightsError, match=r"shapes do not fit the network: \[conv_in\.weight"):
            ExposureCorrector(folder, device="cpu")
    assert built == ["meta"]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_holding_nan_or_infinity_are_refused(tmp_path, level2_path, value) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    state = load_file(folder / WEIGHTS_NAME)
    state["dec1b.weight"][0, 0, 1, 1] = value
    save_file(state, folder / WEIGHTS_NAME)
    with pytest.raises(WeightsError, match=r"NaN or infinite values: \[dec1b\.weight\]"):
        ExposureCorrector(folder, device="cpu")


def test_weights_that_overflow_give_an_error_not_a_black_picture(
    tmp_path, level2_path, photo
) -> None:
    """Finite weights ×1e38: the network's output overflows; refused, not returned."""
    folder = _saved_folder(tmp_path, level2_path)
    state = load_file(folder / WEIGHTS_NAME)
    state["conv_in.weight"] *= 1e38
    save_file(state, folder / WEIGHTS_NAME)
    corrector = ExposureCorrector(folder, device="cpu")
    for image in (photo, photo.astype(np.float32) / 255):
        with pytest.raises(WeightsError, match="NaN or infinite values"):
            corrector(image)


def _write_config(folder: Path, text: str) -> None:
    (folder / CONFIG_NAME).write_text(text)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ('"iterations": Infinity', "Infinity is not a number JSON allows"),
        ('"iterations": NaN', "NaN is not a number JSON allows"),
        ('"width": 1e400', "width must be an int from 1 to 256, not inf"),
        ('"width": 32.0', "width must be an int from 1 to 256, not 32.0"),
        ('"iterations": 0', "iterations must be an int from 1 to 16, not 0"),
        ('"iterations": true', "iterations must be an int from 1 to 16, not True"),
        ('"slot_counts": "37"', "slot_counts must be a list of ints"),
        ('"slot_counts": [3, 7.5]', "slot_counts must be an int from 1 to 64, not 7.5"),
        ('"level": 3', "level 3 but 2 slot_counts"),
        ('"architecture": "unet"', "architecture 'unet' is not 'exposure-slot'"),
        ('"colour": "red"', "unknown field(s) colour"),
        ('"width": 64', "config.json says width 64 but the weights have 32"),
        ('"iterations": 5, "width": 64', "config.json says width 64 but the weights have 32"),
        ('"trained_steps": ' + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('"trained_steps": ' + "[" * 2000 + "]" * 2000, "nested too deeply"),
        ('"trained_steps": ' + "[" * 50 + "]" * 50, None),
    ],
)
def test_every_config_field_is_honoured_or_refused(tmp_path, level2_path, change, words) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    text = (folder / CONFIG_NAME).read_text()
    end = text.rindex("}")
    _write_config(folder, text[:end] + ", " + change + text[end:])  # the last value wins
    if words is None:  # an informational field within the parser's reach: loads
        ExposureCorrector(folder, device="cpu")
        return
    with pytest.raises(WeightsError) as info:
        ExposureCorrector(folder, device="cpu")
    assert words in str(info.value) and CONFIG_NAME in str(info.value)


def test_config_iterations_are_used(tmp_path, level2_path, photo) -> None:
    folder = _saved_folder(tmp_path, level2_path)
    config = json.loads((folder / CONFIG_NAME).read_text())
    three = ExposureCorrector(folder, device="cpu")
    _write_config(folder, json.dumps({**config, "iterations": 5}))
    five = ExposureCorrector(folder, device="cpu")
    assert five.net.config.iterations == 5 and five.net.block.attn.slots.iterations == 5
    small = photo[::8, ::8].astype(np.float32) / 255
    assert not np.array_equal(five(small), three(small))
    assert (
        json.loads((five.save_pretrained(tmp_path / "again") / CONFIG_NAME).read_text())[
            "iterations"
        ]
        == 5
    )


def test_save_pretrained_onto_a_file_is_refused(tmp_path, corrector) -> None:
    target = tmp_path / "model"
    target.write_bytes(b"mine")
    with pytest.raises(OptionError, match="it exists and is not a folder"):
        corrector.save_pretrained(target)
    assert target.read_bytes() == b"mine"


def test_save_folder_writes_only_configs_it_can_read_back(tmp_path, corrector) -> None:
    with pytest.raises(OptionError, match=r"extra_config field.* colour"):
        save_folder(corrector.net, tmp_path / "out", extra_config={"colour": "red"})
    assert not (tmp_path / "out").exists()
    folder = save_folder(corrector.net, tmp_path / "out", extra_config={"trained_steps": 7})
    assert ExposureCorrector(folder, device="cpu").net.config == corrector.net.config


def test_every_bundled_name_keeps_its_weights() -> None:
    """A name is a pin: a new default is a new name, and the previous default still loads by
    its own name, with the files the manifest pins, and corrects differently from it."""
    manifest = load_manifest()
    bundled = [e for e in manifest.entries.values() if e.bundled]
    assert len(bundled) >= 2 and manifest.default in {e.name for e in bundled}
    photo = np.linspace(0.02, 0.3, 32 * 48 * 3, dtype=np.float32).reshape(32, 48, 3)
    outputs = {}
    for entry in bundled:
        corrector = ExposureCorrector(entry.name, device="cpu")
        assert corrector.weights_info.name == entry.name
        assert corrector.weights_info.sha256 == entry.sha256(WEIGHTS_NAME)
        outputs[entry.name] = corrector(photo)
    assert ExposureCorrector(device="cpu").weights_info.name == manifest.default
    values = list(outputs.values())
    assert all(np.abs(a - b).max() > 0.01 for a, b in itertools.pairwise(values))
