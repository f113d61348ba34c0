"""Fetch weights files from the Hugging Face Hub, verify them, and explain failures plainly.

Downloads go through ``huggingface_hub.hf_hub_download``, so its cache layout, progress bar,
``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_ENDPOINT`` settings and stored login all apply. Note that
``huggingface_hub`` reads those variables once, when it is imported. ``HF_HUB_OFFLINE`` is the
exception here: it is also read at call time, so setting it late still keeps us off the network.

When the Hub cannot be reached or fails (5xx), ``hf_hub_download`` returns the cached copy if
there is one, so a Hub outage does not break a machine that ran once online. When nothing is
cached, huggingface_hub retries a failed lookup several times, with back-off, before we
report it; HF_HUB_OFFLINE=1 skips all of that.

Integrity: with ``sha256`` given, every returned file is hashed, cached or not, so a bad file
is never handed out. On a mismatch we compare the bytes with the hash the Hub announced for
them (the name of the cache blob). If those disagree too, the cached copy is corrupt (disk or
transfer damage) and it is removed from the cache, so the next call downloads it afresh; if they
agree, the Hub really serves other bytes than expected (the repo changed, or the expected hash
is wrong), so the cache is left alone and the error says to pin ``revision``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.utils import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..errors import (
    DownloadError,
    ExposureSlotError,
    OptionError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from .convert import load_folder

__all__ = ["download_files", "push_folder_to_hub", "sha256_file"]

NETWORK_HINT = (
    "no network? pass a local path, or run once online so the file is cached, "
    "or set HF_HUB_OFFLINE=1 to use the cache"
)
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SHA1_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}
# Packages whose exceptions mean "the transfer failed" (huggingface_hub's HTTP stack, any version).
_HTTP_PACKAGES = {"httpx", "httpx2", "httpcore", "h11", "requests", "urllib3"}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large weights never sit in memory."""
    return _hash_file(path, hashlib.sha256())


def _hash_file(path: str | os.PathLike[str], digest: hashlib._Hash) -> str:
    """Feed a file to ``digest`` in chunks; its hex digest."""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_files(
    repo_id: str,
    filenames: Sequence[str],
    *,
    revision: str | None = None,
    sha256: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> dict[str, Path]:
    """Download ``filenames`` from Hub repo ``repo_id`` (or take them from the cache).

    Returns ``{filename: path}``, each path inside the Hugging Face cache (``cache_dir``, else
    ``HF_HUB_CACHE``). ``revision`` is a branch, tag or commit sha (default ``main``); pin a
    commit for reproducible weights. ``sha256`` maps file names (it may list more files) to
    the expected hex digest; listed files are verified on every call. ``token`` is passed to
    the Hub (``None``: the stored login or ``HF_TOKEN``; ``False``: none).

    Raises WeightsNotFoundError (repo, revision or file missing, or private/gated without
    access), DownloadError (network, server or cache failure; nothing usable cached), and
    WeightsIntegrityError (sha256 mismatch; see the module notes for what happens to the cache).
    """
    if isinstance(filenames, str):
        raise OptionError(f"filenames must be a list of file names, not the string {filenames!r}")
    expected = _expected_hashes(sha256)
    offline = local_files_only or _offline_mode()
    if force_download and offline:
        raise OptionError(
            "force_download=True needs the network, but local_files_only=True or HF_HUB_OFFLINE=1 "
            "forbids it"
        )
    paths: dict[str, Path] = {}
    for filename in filenames:
        try:
            path = Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    cache_dir=cache_dir,
                    token=token,
                    local_files_only=offline,
                    force_download=force_download,
                )
            )
        except Exception as exc:
            error = _translate(exc, repo_id, filename, revision, cache_dir, offline)
            if error is None:
                raise
            raise error from exc
        if filename in expected:
            _verify(path, expected[filename], repo_id, filename, revision)
        paths[filename] = path
    return paths


def push_folder_to_hub(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool = False,
    commit_message: str = "Upload Exposure-slot weights",
) -> str:
    """Upload a weights folder to Hub model repo ``repo_id`` (created if needed) in one commit.

    A thin wrapper over ``HfApi.create_repo`` and ``HfApi.upload_folder``, for maintainers
    publishing weights: it first checks that ``folder`` loads (``model.safetensors`` and
    ``config.json``, as written by ``save_pretrained`` or ``exposure-slot convert``, which
    also writes the ``README.md`` model card). Needs a write token (``token``, ``HF_TOKEN``
    or ``hf auth login``). Returns the commit sha, to pin as ``revision`` in a manifest.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsNotFoundError(f"cannot push {folder}: it is not a folder")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise OptionError(f"repo id must look like 'org/name', got {repo_id!r}")
    load_folder(folder)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message
        )
    except Exception as exc:
        if isinstance(exc, (HfHubHTTPError, OSError)) or _from_http_stack(exc):
            raise DownloadError(
                f"pushing {folder} to repo '{repo_id}' on {constants.ENDPOINT} failed "
                f"({_describe(exc)}); pushing needs a write token (token=..., HF_TOKEN or "
                "'hf auth login')"
            ) from exc
        if isinstance(exc, ValueError):  # e.g. the Hub refused the README's metadata
            raise OptionError(f"the Hub refused {folder} for repo '{repo_id}': {exc}") from exc
        raise
    return commit.oid


def _offline_mode() -> bool:
    """Offline as huggingface_hub saw it at import, or as the environment says now."""
    return bool(constants.HF_HUB_OFFLINE) or (os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE)


def _expected_hashes(sha256: Mapping[str, str] | None) -> dict[str, str]:
    """Lower-cased expected digests, each checked to look like a sha256."""
    expected: dict[str, str] = {}
    for name, digest in (sha256 or {}).items():
        value = str(digest).strip().lower()
        if not _SHA256_RE.fullmatch(value):
            raise OptionError(f"sha256 for {name!r} must be 64 hex digits, got {digest!r}")
        expected[name] = value
    return expected


def _verify(path: Path, expected: str, repo_id: str, filename: str, revision: str | None) -> None:
    """Raise WeightsIntegrityError if ``path`` does not hash to ``expected``."""
    actual = sha256_file(path)
    if actual == expected:
        return
    if _discard_if_corrupt(path, actual):
        advice = (
            "the cached copy did not match what the Hub announced for it either, so it was "
            "corrupt and has been removed from the cache: call again to download it afresh"
        )
    else:
        advice = (
            f"the file is intact as published at revision '{revision or 'main'}', so the repo "
            "changed or the expected hash is wrong: pin revision= to the commit the hash was "
            "made for (or pass force_download=True if you doubt the cached copy)"
        )
    raise WeightsIntegrityError(
        f"sha256 mismatch for '{filename}' from repo '{repo_id}' ({path}): "
        f"expected {expected}, got {actual}; {advice}"
    )


def _discard_if_corrupt(path: Path, actual_sha256: str) -> bool:
    """Delete a cached file whose bytes differ from the hash its cache blob is named after.

    The Hub cache stores each file as ``blobs/<etag>`` (sha256 for LFS files, git blob sha1
    otherwise) with a snapshot symlink to it. Returns whether the blob and link were removed.
    A cache without symlinks keeps no blob name to check against, so nothing is removed there.
    """
    if not path.is_symlink():
        return False
    blob = path.resolve()
    if blob.parent.name != "blobs":
        return False
    if _SHA256_RE.fullmatch(blob.name):
        intact = actual_sha256 == blob.name
    elif _SHA1_RE.fullmatch(blob.name):
        intact = _git_blob_sha1(blob) == blob.name
    else:
        return False
    if intact:
        return False
    try:
        blob.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    except OSError:  # a read-only cache: the error message then points to force_download
        return False
    return True


def _git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the Hub uses as ETag for non-LFS files)."""
    return _hash_file(path, hashlib.sha1(b"blob %d\0" % path.stat().st_size))


def _translate(
    exc: BaseException,
    repo_id: str,
    filename: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    offline: bool,
) -> ExposureSlotError | None:
    """Our error for a huggingface_hub failure, or None for an unexpected one (a bug)."""
    endpoint = constants.ENDPOINT
    rev = revision or "main"
    what = f"'{filename}' of repo '{repo_id}' at revision '{rev}'"
    if isinstance(exc, GatedRepoError):
        return WeightsNotFoundError(
            f"repo '{repo_id}' on {endpoint} is gated: accept its terms on the Hub and pass "
            "token=... (or log in)"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return WeightsNotFoundError(
            f"repo '{repo_id}' not found on {endpoint} (private or gated repos need token=... "
            "or a login)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return WeightsNotFoundError(f"revision '{rev}' not found in repo '{repo_id}' on {endpoint}")
    if isinstance(exc, LocalEntryNotFoundError):
        cause = exc.__cause__
        if offline or cause is None or isinstance(cause, OfflineModeIsEnabled):
            return DownloadError(
                f"{what} is not in the cache {cache_dir or constants.HF_HUB_CACHE} and downloads "
                "are off (local_files_only=True or HF_HUB_OFFLINE=1): pass a local path, or run "
                "once online so the file is cached"
            )
        return DownloadError(
            f"cannot download {what} from {endpoint} ({_describe(cause)}) and it is not "
            f"cached; {NETWORK_HINT}"
        )
    if isinstance(exc, EntryNotFoundError):
        return WeightsNotFoundError(
            f"file '{filename}' not found in repo '{repo_id}' at revision '{rev}' on {endpoint}"
        )
    if isinstance(exc, HfHubHTTPError) and _status(exc) in (401, 403):
        return WeightsNotFoundError(
            f"{endpoint} refused access to {what} ({_describe(exc)}): check token=... (or log in)"
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError(f"cannot download {what}: HF_HUB_OFFLINE=1 forbids network access")
    if isinstance(exc, (HfHubHTTPError, TimeoutError, ConnectionError)) or _from_http_stack(exc):
        return DownloadError(
            f"cannot download {what} from {endpoint} ({_describe(exc)}); {NETWORK_HINT}"
        )
    if isinstance(exc, HFValidationError):
        return OptionError(f"cannot download {what}: {exc}")
    if isinstance(exc, ValueError):
        if exc.__cause__ is not None:
            return _translate(exc.__cause__, repo_id, filename, revision, cache_dir, offline)
        return OptionError(f"cannot download {what}: {exc}")
    if isinstance(exc, OSError) and exc.errno is None:
        return DownloadError(
            f"the download of {what} from {endpoint} was incomplete ({_describe(exc)}); retry, "
            "and check any proxy between you and the Hub if it keeps happening"
        )
    if isinstance(exc, OSError):
        return DownloadError(
            f"cannot store {what} in the cache {cache_dir or constants.HF_HUB_CACHE} "
            f"({_describe(exc)}): check free space and write permission, or pass cache_dir="
        )
    return None


def _from_http_stack(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the HTTP client huggingface_hub uses (a transfer failure)."""
    return any(cls.__module__.split(".")[0] in _HTTP_PACKAGES for cls in type(exc).__mro__)


def _describe(exc: BaseException | None) -> str:
    """A one-line summary of a cause: the HTTP status, or the exception type and message."""
    if isinstance(exc, HfHubHTTPError) and _status(exc) is not None:
        return f"HTTP {_status(exc)}"
    if exc is None:
        return "unknown error"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _status(exc: HfHubHTTPError) -> int | None:
    """The HTTP status of a Hub error, if it carries a response."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)
