"""A local stand-in for the Hugging Face Hub, so download code is tested over real HTTP.

`HubServer` answers the two kinds of request `huggingface_hub.hf_hub_download` makes, the
same way the Hub does:

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``: ``X-Repo-Commit`` names the
  40-hex commit the revision resolves to. A regular (git) file is answered ``200`` with
  ``ETag`` = its git blob sha1 and ``Content-Length``. An LFS file (by suffix) is answered
  ``302`` to a "CDN" URL on another host name (``localhost`` instead of ``127.0.0.1``), with
  ``X-Linked-Etag`` = its sha256 and ``X-Linked-Size`` = its size.
* ``HEAD``/``GET /cdn/{repo_id}/{sha256}/{filename}``: the LFS bytes, with ``Range`` support.
* ``GET /api/agent-harnesses``: an empty registry (huggingface_hub 2.x asks for it once per
  process, to describe the caller in its User-Agent).

After `HubServer.accept_uploads`, it also takes pushes the way ``HfApi.upload_folder`` makes
them without ``hf_xet`` (set ``HF_HUB_DISABLE_XET``): ``POST /api/repos/create``,
``POST /api/validate-yaml`` (the README's YAML front matter must parse), ``POST
/api/models/{repo_id}/preupload/{revision}`` (LFS for the suffixes above, regular otherwise),
``POST /{repo_id}.git/info/lfs/objects/batch`` (basic transfer to ``PUT /lfs-upload/{sha256}``,
whose body must hash to that sha256) and ``POST /api/models/{repo_id}/commit/{revision}``
(NDJSON; the new commit keeps the parent's files). Every push request but the LFS ``PUT``
needs the write token.

Missing things get ``404`` with the Hub's ``X-Error-Code`` (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``); a private repo asked without its token gets ``401``
``RepoNotFound``; a gated repo gets ``403`` ``GatedRepo``. Faults can be switched on per file:
an HTTP status (`HubServer.fail`) or a cut body (`HubServer.truncate`). Every request is logged
for assertions. The server listens on 127.0.0.1 only, on a free port, closes each connection
after one response, and stops when its context manager or fixture ends.

Fixtures: ``hub_server`` (a started, empty server) and ``hub_env`` (``huggingface_hub`` pointed
at that server with a private cache, no token and no back-off sleeps). Use them with
``pytest_plugins = ("hub_server",)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, unquote, urlsplit

import pytest
import yaml

RepoSpec = Mapping[str, Mapping[str, bytes]]
"""Commits of one repo: ``{revision: {filename: bytes}}`` (see `HubServer.add_commit`)."""

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".npz")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_RESOLVE_RE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN_RE = re.compile(r"^/cdn/(?P<repo>[^/]+(?:/[^/]+)?)/(?P<sha>[0-9a-f]{64})/(?P<file>.+)$")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")
_PUSH_RE = re.compile(
    r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/(?P<action>preupload|commit)/(?P<rev>[^/]+)$"
)
_LFS_BATCH_RE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)\.git/info/lfs/objects/batch$")
_LFS_PUT_RE = re.compile(r"^/lfs-upload/(?P<sha>[0-9a-f]{64})$")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file's bytes: what the Hub sends as ETag for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_hex(data: bytes) -> str:
    """The sha256 of bytes, hex: what the Hub sends as X-Linked-Etag for LFS files."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received: method, decoded path, headers (lower-case names)."""

    method: str
    path: str
    headers: Mapping[str, str]


@dataclass
class _Truncation:
    keep_bytes: int
    close: bool
    times: int | None


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


class HubServer:
    """A threaded HTTP server on 127.0.0.1 that serves repos like the Hub's resolve endpoint.

    ``repos`` maps a repo id to its commits, oldest first: ``{revision: {filename: bytes}}``.
    A 40-hex key is a commit sha; any other key is a branch name whose commit sha is derived
    from the repo, branch and files. Without an explicit ``"main"`` key, ``main`` points to the
    last commit. `restrict` makes a repo private or gated.
    """

    CDN_HOST = "localhost"
    """Host name of LFS download URLs: another origin than 127.0.0.1, like the Hub's CDN."""

    def __init__(self, repos: Mapping[str, RepoSpec] | None = None) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._private: dict[str, str] = {}
        self._gated: set[str] = set()
        self._failures: dict[str, tuple[int, frozenset[str]]] = {}
        self._truncations: dict[str, _Truncation] = {}
        self._log: list[LoggedRequest] = []
        self._write_token: str | None = None
        self._lfs_uploads: dict[str, bytes] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for repo_id, commits in (repos or {}).items():
            for revision, files in commits.items():
                if _COMMIT_RE.fullmatch(revision):
                    self.add_commit(repo_id, files, sha=revision, branch=None)
                else:
                    self.add_commit(repo_id, files, branch=revision)
            self._repos[repo_id].refs.setdefault(
                "main", next(reversed(self._repos[repo_id].commits))
            )

    # -- content -------------------------------------------------------------------------------

    def add_commit(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        branch: str | None = "main",
        sha: str | None = None,
    ) -> str:
        """Add a commit holding ``files`` (moving ``branch`` to it, if given); return its sha."""
        if sha is None:
            digest = hashlib.sha1(
                f"{repo_id}\0{branch}\0{len(self._repos.get(repo_id, _Repo()).commits)}".encode()
            )
            for name in sorted(files):
                digest.update(name.encode() + b"\0" + sha256_hex(files[name]).encode())
            sha = digest.hexdigest()
        if not _COMMIT_RE.fullmatch(sha):
            raise ValueError(f"commit sha must be 40 lower-case hex digits, got {sha!r}")
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo())
            repo.commits[sha] = dict(files)
            if branch is not None:
                repo.refs[branch] = sha
        return sha

    def restrict(self, repo_id: str, *, token: str | None = None, gated: bool = False) -> None:
        """Make ``repo_id`` private to ``token`` (401 without it) and/or gated (403 for all)."""
        with self._lock:
            if token is not None:
                self._private[repo_id] = token
            if gated:
                self._gated.add(repo_id)

    def accept_uploads(self, token: str) -> None:
        """Take pushes (create repo, upload, commit) authorised by ``token``."""
        with self._lock:
            self._write_token = token

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (a branch or a sha)."""
        sha = self.commit(repo_id, revision)
        with self._lock:
            return dict(self._repos[repo_id].commits[sha])

    def commit(self, repo_id: str, revision: str = "main") -> str:
        """The commit sha that ``revision`` (a branch or a sha) resolves to."""
        sha = self._resolve(repo_id, revision)
        if sha is None:
            raise KeyError(f"{repo_id}@{revision}")
        return sha

    # -- faults --------------------------------------------------------------------------------

    def fail(
        self, filename: str, status: int = 500, *, methods: Collection[str] = ("HEAD", "GET")
    ) -> None:
        """Answer every request for ``filename`` (resolve or CDN) with ``status``."""
        with self._lock:
            self._failures[filename] = (status, frozenset(m.upper() for m in methods))

    def truncate(
        self, filename: str, *, keep_bytes: int = 0, close: bool = True, times: int | None = None
    ) -> None:
        """Cut the body of GET responses for ``filename`` after ``keep_bytes`` bytes.

        ``close=True`` announces the full Content-Length and closes the connection early (a
        network cut); ``close=False`` sends a complete response that is just too short (a
        broken proxy). ``times`` limits how many responses are cut (``None``: all of them).
        """
        with self._lock:
            self._truncations[filename] = _Truncation(keep_bytes, close, times)

    def clear_faults(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._failures.clear()
            self._truncations.clear()

    # -- log -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._log)

    def requests_for(self, filename: str, method: str | None = None) -> list[LoggedRequest]:
        """The requests (resolve or CDN) that named ``filename``, optionally of one method."""
        return [
            r
            for r in self.requests
            if r.path.endswith("/" + filename) and (method is None or r.method == method)
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint to use as HF_ENDPOINT, e.g. ``http://127.0.0.1:43211``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.hub = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; later requests are refused."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) --------------------------------------

    def _resolve(self, repo_id: str, revision: str) -> str | None:
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                return None
            if revision in repo.refs:
                return repo.refs[revision]
            return revision if revision in repo.commits else None

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._log.append(
                LoggedRequest(handler.command, unquote(urlsplit(handler.path).path), headers)
            )

    def _failure_for(self, filename: str, method: str) -> int | None:
        with self._lock:
            status, methods = self._failures.get(filename, (None, frozenset()))
        return status if method in methods else None

    def _take_truncation(self, filename: str) -> _Truncation | None:
        with self._lock:
            cut = self._truncations.get(filename)
            if cut is None or cut.times == 0:
                return None
            if cut.times is not None:
                cut.times -= 1
            return _Truncation(cut.keep_bytes, cut.close, cut.times)

    def _lfs_blob(self, repo_id: str, sha: str) -> bytes | None:
        with self._lock:
            repo = self._repos.get(repo_id, _Repo())
            for files in repo.commits.values():
                for data in files.values():
                    if sha256_hex(data) == sha:
                        return data
        return None

    def _access_error(self, repo_id: str, authorization: str | None) -> tuple[int, str] | None:
        if repo_id in self._private and authorization != f"Bearer {self._private[repo_id]}":
            return 401, "RepoNotFound"
        if repo_id in self._gated:
            return 403, "GatedRepo"
        return None

    def handle(self, handler: _Handler) -> None:
        """Answer one HEAD or GET request."""
        self._record(handler)
        path = urlsplit(handler.path).path
        if match := _RESOLVE_RE.match(path):
            repo_id, revision, filename = (unquote(match[k]) for k in ("repo", "rev", "file"))
            self._handle_resolve(handler, repo_id, revision, filename)
        elif path == "/api/agent-harnesses":
            body = json.dumps({"standardEnvVars": [], "harnesses": {}}).encode()
            handler.send_response(200)
            handler.send_headers(
                {"Content-Type": "application/json", "Content-Length": str(len(body))}
            )
            if handler.command == "GET":
                handler.wfile.write(body)
        elif match := _CDN_RE.match(path):
            repo_id, sha, filename = unquote(match["repo"]), match["sha"], unquote(match["file"])
            self._handle_cdn(handler, repo_id, sha, filename)
        else:
            handler.send_error_code(404, "RepoNotFound", f"no route for {path}")

    def _handle_resolve(
        self, handler: _Handler, repo_id: str, revision: str, filename: str
    ) -> None:
        if (status := self._failure_for(filename, handler.command)) is not None:
            handler.send_error_code(status, None, f"injected failure for {filename}")
            return
        if repo_id not in self._repos:
            handler.send_error_code(404, "RepoNotFound", f"Repository {repo_id} not found")
            return
        if denied := self._access_error(repo_id, handler.headers.get("Authorization")):
            handler.send_error_code(denied[0], denied[1], f"Access to {repo_id} is restricted")
            return
        commit = self._resolve(repo_id, revision)
        if commit is None:
            handler.send_error_code(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        with self._lock:
            data = self._repos[repo_id].commits[commit].get(filename)
        commit_header = {"X-Repo-Commit": commit}
        if data is None:
            handler.send_error_code(
                404, "EntryNotFound", f"{filename} does not exist", commit_header
            )
            return
        if filename.endswith(LFS_SUFFIXES):
            sha = sha256_hex(data)
            port = handler.server.server_address[1]
            location = f"http://{self.CDN_HOST}:{port}/cdn/{repo_id}/{sha}/{quote(filename)}"
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
            )
            handler.send_response(302)
            handler.send_headers(
                {
                    **commit_header,
                    "Location": location,
                    "ETag": f'"{git_blob_sha1(pointer.encode())}"',
                    "X-Linked-Etag": f'"{sha}"',
                    "X-Linked-Size": str(len(data)),
                    "Content-Length": "0",
                }
            )
            return
        handler.send_file(
            data,
            {**commit_header, "ETag": f'"{git_blob_sha1(data)}"'},
            self._take_truncation(filename),
        )

    def handle_push(self, handler: _Handler) -> None:
        """Answer one POST or PUT request of a push."""
        self._record(handler)
        path = unquote(urlsplit(handler.path).path)
        body = handler.read_body()
        if match := _LFS_PUT_RE.match(path):
            if sha256_hex(body) != match["sha"]:
                handler.send_error_code(400, None, "uploaded bytes do not match their sha256")
                return
            with self._lock:
                self._lfs_uploads[match["sha"]] = body
            handler.send_json(200, {})
            return
        with self._lock:
            token = self._write_token
        if token is None or handler.headers.get("Authorization") != f"Bearer {token}":
            handler.send_error_code(401, None, "Invalid credentials in Authorization header")
            return
        if path == "/api/repos/create":
            request = json.loads(body)
            repo_id = "/".join(filter(None, (request["organization"], request["name"])))
            with self._lock:
                exists = repo_id in self._repos
                self._repos.setdefault(repo_id, _Repo())
            if exists:
                handler.send_error_code(409, None, "You already created this model repo")
            else:
                handler.send_json(200, {"url": f"{self.url}/{repo_id}"})
        elif path == "/api/validate-yaml":
            self._validate_card(handler, json.loads(body)["content"])
        elif _LFS_BATCH_RE.match(path):
            objects = [
                {
                    "oid": o["oid"],
                    "size": o["size"],
                    "actions": {"upload": {"href": f"{self.url}/lfs-upload/{o['oid']}"}},
                }
                for o in json.loads(body)["objects"]
            ]
            handler.send_json(200, {"transfer": "basic", "objects": objects})
        elif (match := _PUSH_RE.match(path)) is None:
            handler.send_error_code(404, None, f"no route for {path}")
        elif match["repo"] not in self._repos:
            handler.send_error_code(404, "RepoNotFound", f"Repository {match['repo']} not found")
        elif match["action"] == "preupload":
            modes = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                    "shouldIgnore": False,
                }
                for f in json.loads(body)["files"]
            ]
            handler.send_json(200, {"files": modes})
        else:
            self._commit_push(handler, match["repo"], match["rev"], body)

    def _validate_card(self, handler: _Handler, content: str) -> None:
        front = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        try:
            metadata = yaml.safe_load(front[1]) if front else {}
        except yaml.YAMLError as exc:
            handler.send_json(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            return
        if not isinstance(metadata, dict):
            handler.send_json(400, {"errors": [{"message": "metadata must be a mapping"}]})
            return
        handler.send_json(200, {"errors": [], "warnings": []})

    def _commit_push(self, handler: _Handler, repo_id: str, revision: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        with self._lock:
            head = self._repos[repo_id].refs.get(revision)
            files = dict(self._repos[repo_id].commits[head]) if head else {}
            for line in lines:
                value = line["value"]
                if line["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif line["key"] == "lfsFile":
                    if value["oid"] not in self._lfs_uploads:
                        handler.send_error_code(422, None, f"LFS object {value['oid']} missing")
                        return
                    files[value["path"]] = self._lfs_uploads[value["oid"]]
        sha = self.add_commit(repo_id, files, branch=revision)
        url = f"{self.url}/{repo_id}/commit/{sha}"
        handler.send_json(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def _handle_cdn(self, handler: _Handler, repo_id: str, sha: str, filename: str) -> None:
        if (status := self._failure_for(filename, handler.command)) is not None:
            handler.send_error_code(status, None, f"injected failure for {filename}")
            return
        data = self._lfs_blob(repo_id, sha)
        if data is None:
            handler.send_error_code(404, None, "no such object")
            return
        handler.send_file(data, {"ETag": f'"{sha}"'}, self._take_truncation(filename))


class _Handler(BaseHTTPRequestHandler):
    """Routes HEAD and GET to the `HubServer`; one response per connection."""

    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def do_HEAD(self) -> None:
        self.server.hub.handle(self)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self.server.hub.handle(self)  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.server.hub.handle_push(self)  # type: ignore[attr-defined]

    def do_PUT(self) -> None:
        self.server.hub.handle_push(self)  # type: ignore[attr-defined]

    def read_body(self) -> bytes:
        """The request body, sent with Content-Length or chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def send_json(self, status: int, value: object) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean: the request log is `HubServer.requests`."""

    def send_headers(self, headers: Mapping[str, str]) -> None:
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()

    def send_error_code(
        self,
        status: int,
        error_code: str | None,
        message: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "X-Error-Message": message,
        }
        if error_code is not None:
            headers["X-Error-Code"] = error_code
        self.send_response(status)
        self.send_headers({**headers, **(extra or {})})
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_file(self, data: bytes, headers: Mapping[str, str], cut: _Truncation | None) -> None:
        """Send ``data`` (or the asked range of it), possibly cut short."""
        start, end = 0, len(data)
        status = 200
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if (asked := self.headers.get("Range")) is not None:
            match = _RANGE_RE.match(asked.strip())
            if match is None or int(match[1]) >= len(data):
                self.send_error_code(
                    416, None, f"bad range {asked}", {"Content-Range": f"bytes */{len(data)}"}
                )
                return
            start = int(match[1])
            end = min(int(match[2]) + 1, len(data)) if match[2] else len(data)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        body = data[start:end]
        sent = body if cut is None or self.command == "HEAD" else body[: cut.keep_bytes]
        announced = (
            len(sent) if cut is not None and not cut.close and self.command == "GET" else len(body)
        )
        self.send_response(status)
        self.send_headers({**headers, "Content-Length": str(announced)})
        if self.command == "GET":
            self.wfile.write(sent)
            self.wfile.flush()


# -- pytest fixtures -------------------------------------------------------------------------


@pytest.fixture
def hub_server() -> Iterator[HubServer]:
    """A started, empty `HubServer`; fill it with ``add_commit``. Stopped after the test."""
    with HubServer() as server:
        yield server


@dataclass
class HubEnv:
    """What `hub_env` set up: the server, the cache folder, and the back-off sleeps asked for."""

    server: HubServer
    hf_home: Path
    cache_dir: Path
    sleeps: list[float]


@pytest.fixture
def hub_env(
    hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubEnv]:
    """Point ``huggingface_hub`` at `hub_server`, with its own cache and no token.

    ``huggingface_hub`` reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and the
    timeouts once, at import, into ``huggingface_hub.constants``; so both the environment
    (for code that reads it later) and those constants are set, and restored after the test.
    Its retry back-off (``time.sleep`` of 1 to 8 s between up to 6 tries on network errors
    and 5xx) is made instant so failure tests stay fast; the requested sleeps are recorded in
    ``HubEnv.sleeps``. The HTTP requests themselves are all real.
    """
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import _http

    hf_home = tmp_path / "hf_home"
    cache_dir = hf_home / "hub"
    endpoint = hub_server.url
    sleeps: list[float] = []
    no_wait = SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    no_wait.sleep = sleeps.append

    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(cache_dir)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "NO_PROXY", ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")]))
    )
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache_dir),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_ETAG_TIMEOUT": 5,
        "HF_HUB_DOWNLOAD_TIMEOUT": 5,
    }
    for name, value in settings.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_http, "time", no_wait)
    monkeypatch.setattr(file_download, "time", no_wait)
    _http.close_session()
    try:
        yield HubEnv(hub_server, hf_home, cache_dir, sleeps)
    finally:
        _http.close_session()
