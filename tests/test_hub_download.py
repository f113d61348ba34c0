"""The Hub over real HTTP against the local stand-in in ``hub_server.py``.

First ``download_files`` (cache, offline use, pinned revisions, sha256, HTTP faults), then
the same paths through ``ExposureCorrector.from_pretrained`` with real weights, then
publishing (``exposure-slot convert`` → ``push`` → ``from_pretrained``). Every test gets its
own cache (``hub_env``) and talks to a server on 127.0.0.1; nothing in huggingface_hub is
mocked (only its retry back-off sleeps are made instant).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hub_server import HubServer
from huggingface_hub import constants
from safetensors.numpy import load_file, save

from exposure_slot import ExposureCorrector
from exposure_slot.cli import main
from exposure_slot.errors import (
    DownloadError,
    OptionError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from exposure_slot.weights.hub import NETWORK_HINT, download_files, push_folder_to_hub, sha256_file

if TYPE_CHECKING:
    from hub_server import HubEnv


REPO = "exposure-slot/test-weights"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _weights(seed: int) -> bytes:
    """A real safetensors file with a couple of float tensors."""
    rng = np.random.default_rng(seed)
    return save(
        {
            "encoder.weight": rng.standard_normal((16, 3, 3, 3)).astype(np.float32),
            "encoder.bias": rng.standard_normal(16).astype(np.float32),
        }
    )


def _config(level: int) -> bytes:
    return json.dumps({"levels": level, "slots": 2}).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def repo(hub_env: HubEnv) -> dict[str, dict[str, bytes]]:
    """Two commits of REPO on the stand-in; ``main`` is the second. Keys: the commit shas."""
    old = {WEIGHTS: _weights(0), CONFIG: _config(2)}
    new = {WEIGHTS: _weights(1), CONFIG: _config(3)}
    old_sha = hub_env.server.add_commit(REPO, old)
    new_sha = hub_env.server.add_commit(REPO, new)
    return {old_sha: old, new_sha: new}


def _main(repo: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    return list(repo.values())[-1]


def _is_inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def test_download_gives_served_bytes_inside_the_cache(hub_env: HubEnv, repo) -> None:
    paths = download_files(REPO, [WEIGHTS, CONFIG])
    assert set(paths) == {WEIGHTS, CONFIG}
    for name, path in paths.items():
        assert path.name == name
        assert path.read_bytes() == _main(repo)[name]
        assert _is_inside(path, hub_env.cache_dir), path
        assert path.parent.name == hub_env.server.commit(REPO, "main")
    loaded = load_file(paths[WEIGHTS])
    assert loaded["encoder.weight"].shape == (16, 3, 3, 3)
    assert hub_env.server.requests_for(WEIGHTS, "GET"), "the LFS file must come over HTTP"


def test_explicit_cache_dir_is_used(hub_env: HubEnv, repo, tmp_path: Path) -> None:
    own_cache = tmp_path / "elsewhere"
    paths = download_files(REPO, [CONFIG], cache_dir=own_cache)
    assert _is_inside(paths[CONFIG], own_cache)
    assert not hub_env.cache_dir.exists() or not any(hub_env.cache_dir.rglob(CONFIG))


@pytest.mark.parametrize("how", ["local_files_only", "hf_constant", "env_set_late"])
def test_cached_files_are_used_without_network(
    hub_env: HubEnv, repo, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    first = download_files(REPO, [WEIGHTS, CONFIG])
    seen = len(hub_env.server.requests)
    if how == "hf_constant":  # HF_HUB_OFFLINE=1 set before huggingface_hub was imported
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    elif how == "env_set_late":  # set after import: huggingface_hub ignores it, we do not
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local_only = how == "local_files_only"

    again = download_files(REPO, [WEIGHTS, CONFIG], local_files_only=local_only)
    assert again == first
    assert len(hub_env.server.requests) == seen, "offline use must not touch the network"

    hub_env.server.stop()
    stopped = download_files(REPO, [WEIGHTS, CONFIG], local_files_only=local_only)
    assert {n: p.read_bytes() for n, p in stopped.items()} == _main(repo)


def test_unreachable_hub_falls_back_to_cache(hub_env: HubEnv, repo) -> None:
    first = download_files(REPO, [WEIGHTS, CONFIG])
    hub_env.server.stop()
    assert download_files(REPO, [WEIGHTS, CONFIG]) == first


def test_offline_without_cache_says_so(hub_env: HubEnv, repo) -> None:
    with pytest.raises(DownloadError, match="not in the cache") as info:
        download_files(REPO, [WEIGHTS], local_files_only=True)
    assert WEIGHTS in str(info.value) and REPO in str(info.value)
    assert hub_env.server.requests_for(WEIGHTS) == []


def test_pinned_revision_gets_that_commit(hub_env: HubEnv, repo) -> None:
    old_sha, new_sha = list(repo)
    old = download_files(REPO, [WEIGHTS, CONFIG], revision=old_sha)
    main = download_files(REPO, [WEIGHTS, CONFIG])
    pinned_new = download_files(REPO, [WEIGHTS], revision=new_sha)
    for name in (WEIGHTS, CONFIG):
        assert old[name].read_bytes() == repo[old_sha][name]
        assert main[name].read_bytes() == repo[new_sha][name]
        assert old[name].read_bytes() != main[name].read_bytes()
    assert pinned_new[WEIGHTS] == main[WEIGHTS]
    assert old[WEIGHTS].parent.name == old_sha


def test_pinned_commit_is_served_from_cache_after_server_stops(hub_env: HubEnv, repo) -> None:
    old_sha = next(iter(repo))
    first = download_files(REPO, [CONFIG], revision=old_sha)
    hub_env.server.stop()
    assert download_files(REPO, [CONFIG], revision=old_sha) == first


class TestReposGivenAsADict:
    """The server built from ``{repo: {revision: files}}``: commit-sha keys and a branch key."""

    OLD_SHA = "1" * 40

    @pytest.fixture
    def hub_server(self) -> Iterator[HubServer]:
        spec = {
            REPO: {self.OLD_SHA: {CONFIG: _config(2)}, "main": {CONFIG: _config(3)}},
            "solo": {"dev": {CONFIG: _config(4)}},
        }
        with HubServer(spec) as server:
            yield server

    def test_commit_and_branch_keys(self, hub_env: HubEnv) -> None:
        old = download_files(REPO, [CONFIG], revision=self.OLD_SHA)[CONFIG]
        main = download_files(REPO, [CONFIG])[CONFIG]
        assert old.read_bytes() == _config(2) and old.parent.name == self.OLD_SHA
        assert main.read_bytes() == _config(3)
        assert main.parent.name == hub_env.server.commit(REPO, "main") != self.OLD_SHA

    def test_main_defaults_to_the_last_commit(self, hub_env: HubEnv) -> None:
        dev = download_files("solo", [CONFIG], revision="dev")[CONFIG]
        assert download_files("solo", [CONFIG])[CONFIG] == dev
        assert dev.read_bytes() == _config(4)


def test_matching_sha256_passes(hub_env: HubEnv, repo) -> None:
    data = _main(repo)
    paths = download_files(REPO, [WEIGHTS, CONFIG], sha256={n: _sha(d) for n, d in data.items()})
    assert sha256_file(paths[WEIGHTS]) == _sha(data[WEIGHTS])


def test_sha256_of_another_file_is_refused_and_cache_kept(hub_env: HubEnv, repo) -> None:
    old_sha, new_sha = list(repo)
    expected = _sha(repo[old_sha][WEIGHTS])  # a manifest made for the old commit
    actual = _sha(repo[new_sha][WEIGHTS])
    with pytest.raises(WeightsIntegrityError) as info:
        download_files(REPO, [CONFIG, WEIGHTS], sha256={WEIGHTS: expected.upper()})
    message = str(info.value)
    assert WEIGHTS in message and expected in message and actual in message
    assert "pin revision" in message
    # The cached copy is what the Hub serves: kept, but never handed out against that hash.
    snapshot = hub_env.cache_dir / "models--exposure-slot--test-weights" / "snapshots" / new_sha
    assert (snapshot / WEIGHTS).read_bytes() == repo[new_sha][WEIGHTS]
    with pytest.raises(WeightsIntegrityError):
        download_files(REPO, [WEIGHTS], sha256={WEIGHTS: expected}, local_files_only=True)
    pinned = download_files(REPO, [WEIGHTS], sha256={WEIGHTS: expected}, revision=old_sha)
    assert pinned[WEIGHTS].read_bytes() == repo[old_sha][WEIGHTS]


@pytest.mark.parametrize("name", [WEIGHTS, CONFIG], ids=["lfs", "git"])
def test_corrupted_cache_copy_is_removed_then_downloaded_again(
    hub_env: HubEnv, repo, name: str
) -> None:
    good = _main(repo)[name]
    path = download_files(REPO, [name], sha256={name: _sha(good)})[name]
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(good[:-8] + b"garbage!")  # disk damage: same size, other bytes
    gets = len(hub_env.server.requests_for(name, "GET"))

    with pytest.raises(WeightsIntegrityError, match="removed from the cache"):
        download_files(REPO, [name], sha256={name: _sha(good)})
    assert not blob.exists() and not path.is_symlink()

    again = download_files(REPO, [name], sha256={name: _sha(good)})[name]
    assert again.read_bytes() == good
    assert len(hub_env.server.requests_for(name, "GET")) == gets + 1


def test_missing_repo(hub_env: HubEnv, repo) -> None:
    with pytest.raises(WeightsNotFoundError, match="token=") as info:
        download_files("nobody/nothing", [WEIGHTS])
    assert "'nobody/nothing' not found" in str(info.value)
    assert hub_env.server.url in str(info.value)


def test_missing_file(hub_env: HubEnv, repo) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        download_files(REPO, ["missing.safetensors"])
    assert "'missing.safetensors' not found" in str(info.value) and REPO in str(info.value)


def test_missing_revision(hub_env: HubEnv, repo) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        download_files(REPO, [WEIGHTS], revision="v9-does-not-exist")
    assert "'v9-does-not-exist' not found" in str(info.value) and REPO in str(info.value)


def test_private_repo_needs_its_token(hub_env: HubEnv, repo) -> None:
    hub_env.server.restrict(REPO, token="hf_secret")
    with pytest.raises(WeightsNotFoundError, match="token="):
        download_files(REPO, [WEIGHTS], token=False)
    with pytest.raises(WeightsNotFoundError, match="token="):
        download_files(REPO, [WEIGHTS], token="hf_wrong")
    paths = download_files(REPO, [WEIGHTS], token="hf_secret")
    assert paths[WEIGHTS].read_bytes() == _main(repo)[WEIGHTS]
    resolve, cdn = hub_env.server.requests_for(WEIGHTS)[-2:]
    assert resolve.headers.get("authorization") == "Bearer hf_secret"
    assert cdn.path.startswith("/cdn/") and "authorization" not in cdn.headers


def test_gated_repo(hub_env: HubEnv, repo) -> None:
    hub_env.server.restrict(REPO, gated=True)
    with pytest.raises(WeightsNotFoundError, match="gated") as info:
        download_files(REPO, [CONFIG])
    assert REPO in str(info.value)


def test_server_error_without_cache_is_a_download_error(hub_env: HubEnv, repo) -> None:
    hub_env.server.fail(WEIGHTS, 500)
    with pytest.raises(DownloadError) as info:
        download_files(REPO, [WEIGHTS])
    assert "HTTP 500" in str(info.value) and NETWORK_HINT in str(info.value)
    assert WEIGHTS in str(info.value)


def test_server_error_on_the_transfer_only(hub_env: HubEnv, repo) -> None:
    hub_env.server.fail(WEIGHTS, 503, methods=("GET",))
    with pytest.raises(DownloadError, match="HTTP 503"):
        download_files(REPO, [WEIGHTS])


def test_server_error_falls_back_to_cache(hub_env: HubEnv, repo) -> None:
    first = download_files(REPO, [WEIGHTS])
    hub_env.server.fail(WEIGHTS, 500)
    assert download_files(REPO, [WEIGHTS]) == first


def test_cut_connection_is_resumed(hub_env: HubEnv, repo) -> None:
    hub_env.server.truncate(WEIGHTS, keep_bytes=100, times=1)
    path = download_files(REPO, [WEIGHTS])[WEIGHTS]
    assert path.read_bytes() == _main(repo)[WEIGHTS]


@pytest.mark.parametrize("name", [WEIGHTS, CONFIG], ids=["lfs", "git"])
@pytest.mark.parametrize("close", [True, False], ids=["cut", "short"])
def test_truncated_body_is_a_download_error_and_caches_nothing(
    hub_env: HubEnv, repo, name: str, close: bool
) -> None:
    hub_env.server.truncate(name, keep_bytes=10, close=close)
    with pytest.raises(DownloadError) as info:
        download_files(REPO, [name])
    assert name in str(info.value)
    # A cut connection reads as a network failure; a complete but short answer as incomplete.
    assert (NETWORK_HINT if close else "incomplete") in str(info.value)
    repo_cache = hub_env.cache_dir / "models--exposure-slot--test-weights"
    assert not [
        p for p in repo_cache.rglob("*") if p.is_file() and p.parent.name in ("blobs", "snapshots")
    ]
    assert not list(repo_cache.rglob("*.incomplete"))
    hub_env.server.clear_faults()
    assert download_files(REPO, [name])[name].read_bytes() == _main(repo)[name]


def test_stopped_server_without_offline_mode(hub_env: HubEnv, repo) -> None:
    hub_env.server.stop()
    with pytest.raises(DownloadError) as info:
        download_files(REPO, [WEIGHTS])
    assert NETWORK_HINT in str(info.value) and "ConnectError" in str(info.value)


def test_force_download_fetches_again(hub_env: HubEnv, repo) -> None:
    download_files(REPO, [WEIGHTS])
    gets = len(hub_env.server.requests_for(WEIGHTS, "GET"))
    path = download_files(REPO, [WEIGHTS], force_download=True)[WEIGHTS]
    assert len(hub_env.server.requests_for(WEIGHTS, "GET")) == gets + 1
    assert path.read_bytes() == _main(repo)[WEIGHTS]
    with pytest.raises(OptionError, match="force_download"):
        download_files(REPO, [WEIGHTS], force_download=True, local_files_only=True)


@pytest.mark.parametrize(
    ("repo_id", "filenames", "sha256"),
    [
        (REPO, WEIGHTS, None),
        (REPO, [WEIGHTS], {WEIGHTS: "abc"}),
        ("too/many/slashes", [WEIGHTS], None),
        (REPO, ["../outside.json"], None),
    ],
    ids=["filenames-str", "short-sha", "bad-repo-id", "path-escape"],
)
def test_bad_arguments_are_option_errors(hub_env: HubEnv, repo, repo_id, filenames, sha256) -> None:
    with pytest.raises(OptionError):
        download_files(repo_id, filenames, sha256=sha256)


def test_sha256_file_streams_across_chunks(tmp_path: Path) -> None:
    data = np.random.default_rng(3).bytes(3 * (1 << 20) + 5)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)


def test_push_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="not a folder"):
        push_folder_to_hub(tmp_path / "nope", "someone/weights")


# -- ExposureCorrector.from_pretrained over the Hub --------------------------------------------
#
# The same paths as above, taken the way users take them: real weights saved with
# save_pretrained (or written by `exposure-slot convert`), served as a repo, loaded by name.

PUBLISHED = "someone/exposure-level2"
_LOAD_IN_A_NEW_PROCESS = """
import sys
from exposure_slot import ExposureCorrector
corrector = ExposureCorrector.from_pretrained(sys.argv[1], device="cpu")
print(corrector.weights_info.sha256)
"""


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def photo(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[100:164, 180:260])


@pytest.fixture
def published(hub_env: HubEnv, corrector: ExposureCorrector, tmp_path: Path) -> Path:
    """The parity corrector saved with save_pretrained and served as PUBLISHED."""
    folder = corrector.save_pretrained(tmp_path / "saved")
    hub_env.server.add_commit(PUBLISHED, _folder_files(folder))
    return folder


def test_save_upload_from_pretrained_gives_the_same_outputs(
    hub_env: HubEnv, published: Path, corrector: ExposureCorrector, photo: np.ndarray
) -> None:
    loaded = ExposureCorrector.from_pretrained(PUBLISHED, device="cpu")
    assert np.array_equal(loaded(photo), corrector(photo))
    assert loaded.weights_info.source == f"hf://{PUBLISHED}"
    assert loaded.weights_info.sha256 == sha256_file(published / WEIGHTS)
    assert len(hub_env.server.requests_for(WEIGHTS, "GET")) == 1
    cached = hub_env.cache_dir / "models--someone--exposure-level2" / "snapshots"
    assert (next(cached.iterdir()) / WEIGHTS).read_bytes() == (published / WEIGHTS).read_bytes()


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "local_files_only"])
def test_second_use_comes_from_the_cache_with_the_server_stopped(
    hub_env: HubEnv,
    published: Path,
    corrector: ExposureCorrector,
    photo: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    options = {"local_files_only": True} if how == "local_files_only" else {}
    with pytest.raises(DownloadError, match="not in the cache"):
        ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", local_files_only=True)
    assert hub_env.server.requests == [], "local_files_only never touches the network"
    ExposureCorrector.from_pretrained(PUBLISHED, device="cpu")
    hub_env.server.stop()
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", **options)
    assert np.array_equal(again(photo), corrector(photo))


def test_pinned_revision_keeps_the_old_weights(
    hub_env: HubEnv, tmp_path: Path, level2_path: Path, level3_path: Path
) -> None:
    level2 = ExposureCorrector(level2_path, device="cpu").save_pretrained(tmp_path / "l2")
    level3 = ExposureCorrector(level3_path, device="cpu").save_pretrained(tmp_path / "l3")
    old = hub_env.server.add_commit(PUBLISHED, _folder_files(level2))
    hub_env.server.add_commit(PUBLISHED, _folder_files(level3))
    assert ExposureCorrector.from_pretrained(PUBLISHED, device="cpu").level == 3
    pinned = ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", revision=old)
    assert pinned.level == 2 and pinned.weights_info.sha256 == sha256_file(level2 / WEIGHTS)


def _manifest_for(path: Path, folder: Path, revision: str, **changes: str) -> Path:
    """A manifest naming the weights of ``folder`` as Hub repo PUBLISHED at ``revision``."""
    files = {
        name: {"sha256": changes.get(name, sha256_file(folder / name)),
               "size": (folder / name).stat().st_size}
        for name in (WEIGHTS, CONFIG)
    }  # fmt: skip
    entry = {"level": 2, "licence": "Apache-2.0", "repo_id": PUBLISHED, "revision": revision}
    path.write_text(json.dumps({"schema": 1, "weights": {"ours": {**entry, "files": files}}}))
    return path


def test_manifest_hub_entry_is_pinned_and_checked(
    hub_env: HubEnv, published: Path, tmp_path: Path, level3_path: Path
) -> None:
    revision = hub_env.server.commit(PUBLISHED)
    good = _manifest_for(tmp_path / "good.json", published, revision)
    # main moves on to other weights: the pinned entry still gets (and checks) its own.
    level3 = ExposureCorrector(level3_path, device="cpu").save_pretrained(tmp_path / "l3")
    hub_env.server.add_commit(PUBLISHED, _folder_files(level3))
    loaded = ExposureCorrector.from_pretrained("ours", device="cpu", manifest=good)
    assert (loaded.weights_info.name, loaded.level, loaded.weights_info.licence) == (
        "ours",
        2,
        "Apache-2.0",
    )
    bad = _manifest_for(tmp_path / "bad.json", published, revision, **{WEIGHTS: "0" * 64})
    with pytest.raises(WeightsIntegrityError, match="sha256 mismatch") as info:
        ExposureCorrector.from_pretrained("ours", device="cpu", manifest=bad)
    assert PUBLISHED in str(info.value) and "0" * 64 in str(info.value)


def test_missing_repo_or_file_through_from_pretrained(hub_env: HubEnv, published: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        ExposureCorrector.from_pretrained("nobody/nothing", device="cpu")
    message = str(info.value)
    assert "'nobody/nothing' not found" in message
    assert "no local file or folder 'nobody/nothing'" in message
    # A repo with the authors' pickle but no safetensors: the pickle is never fetched.
    hub_env.server.add_commit("someone/pickles", {CONFIG: b"{}", "SICE_level2.pth": b"x" * 99})
    with pytest.raises(WeightsNotFoundError, match=f"'{WEIGHTS}' not found"):
        ExposureCorrector.from_pretrained("someone/pickles", device="cpu")
    assert hub_env.server.requests_for("SICE_level2.pth") == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_through_from_pretrained(
    hub_env: HubEnv, published: Path, status: int
) -> None:
    hub_env.server.fail(WEIGHTS, status)
    with pytest.raises(DownloadError) as info:
        ExposureCorrector.from_pretrained(PUBLISHED, device="cpu")
    message = str(info.value)
    assert f"HTTP {status}" in message and PUBLISHED in message
    assert "pass a local path" in message and "HF_HUB_OFFLINE=1" in message


def test_truncated_download_through_from_pretrained(hub_env: HubEnv, published: Path) -> None:
    hub_env.server.truncate(WEIGHTS, keep_bytes=4096, close=False)
    with pytest.raises(DownloadError, match="incomplete") as info:
        ExposureCorrector.from_pretrained(PUBLISHED, device="cpu")
    assert WEIGHTS in str(info.value)
    assert not list(hub_env.cache_dir.rglob(WEIGHTS)), "nothing half-downloaded is kept"


def test_token_reaches_the_hub(hub_env: HubEnv, published: Path) -> None:
    hub_env.server.restrict(PUBLISHED, token="hf_reader")
    with pytest.raises(WeightsNotFoundError, match="token="):
        ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", token=False)
    loaded = ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", token="hf_reader")
    assert loaded.level == 2
    resolve = [r for r in hub_env.server.requests_for(WEIGHTS) if "/resolve/" in r.path]
    assert resolve[-1].headers.get("authorization") == "Bearer hf_reader"


def test_cache_dir_option(hub_env: HubEnv, published: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", cache_dir=elsewhere)
    assert list(elsewhere.rglob(WEIGHTS)) and not list(hub_env.cache_dir.rglob(WEIGHTS))


def test_hf_home_and_hf_hub_cache_in_a_new_process(
    hub_env: HubEnv, published: Path, tmp_path: Path
) -> None:
    """huggingface_hub reads HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE at import: fresh
    interpreters show they are obeyed (download into HF_HOME, then use that cache offline)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": hub_env.server.url, "OMP_NUM_THREADS": "1"}
    expected = sha256_file(published / WEIGHTS)
    repo_folder = "models--someone--exposure-level2"

    def load(**variables: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_IN_A_NEW_PROCESS, PUBLISHED],
            env={**env, **variables},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    home = tmp_path / "home"
    assert load(HF_HOME=str(home)) == expected
    cache = home / "hub"
    assert (cache / repo_folder).is_dir() and len(hub_env.server.requests_for(WEIGHTS, "GET")) == 1
    hub_env.server.stop()
    other_home = str(tmp_path / "empty-home")  # HF_HUB_CACHE wins over HF_HOME
    assert load(HF_HOME=other_home, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1") == expected


# -- publishing: exposure-slot convert, then push, then from_pretrained ------------------------


@pytest.fixture
def accepts_pushes(hub_env: HubEnv, monkeypatch: pytest.MonkeyPatch) -> str:
    """The stand-in takes pushes with this write token (LFS upload; it has no Xet storage)."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    hub_env.server.accept_uploads("hf_writer")
    return "hf_writer"


def test_convert_push_from_pretrained(
    hub_env: HubEnv,
    accepts_pushes: str,
    tmp_path: Path,
    level2_path: Path,
    corrector: ExposureCorrector,
    photo: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "exposure-level2"
    assert main(["convert", str(level2_path), str(folder), "--repo-id", PUBLISHED]) == 0
    monkeypatch.setenv("HF_TOKEN", accepts_pushes)
    assert main(["push", str(folder), PUBLISHED]) == 0
    commit = hub_env.server.commit(PUBLISHED)
    assert commit in capsys.readouterr().out
    assert hub_env.server.files(PUBLISHED) == _folder_files(folder)

    monkeypatch.delenv("HF_TOKEN")
    loaded = ExposureCorrector.from_pretrained(PUBLISHED, device="cpu", revision=commit)
    assert np.array_equal(loaded(photo), corrector(photo))


def test_push_needs_a_write_token(
    hub_env: HubEnv, accepts_pushes: str, published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", str(published), "someone/new-repo"]) == 1
    assert "write token" in capsys.readouterr().err
    with pytest.raises(DownloadError, match="HTTP 401"):
        push_folder_to_hub(published, "someone/new-repo", token="hf_wrong")
    commit = push_folder_to_hub(published, "someone/new-repo", token=accepts_pushes)
    assert hub_env.server.files("someone/new-repo", commit) == _folder_files(published)


def test_push_refuses_a_folder_that_does_not_load(
    hub_env: HubEnv, accepts_pushes: str, tmp_path: Path
) -> None:
    (tmp_path / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(WeightsIntegrityError):
        push_folder_to_hub(tmp_path, "someone/broken", token=accepts_pushes)
    with pytest.raises(OptionError, match="org/name"):
        push_folder_to_hub(tmp_path, "no-slash", token=accepts_pushes)
    assert hub_env.server.requests == [], "nothing was sent"
