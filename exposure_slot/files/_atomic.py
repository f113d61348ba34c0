"""Atomic writes: a file is written to a hidden temporary file beside it, then renamed over it,
so that a reader never sees a partial file; and the clean-up after writers that were killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from exposure_slot.errors import ImageWriteError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file and a rename, as images are
    written: a reader never sees a partial file. OS errors propagate."""
    atomic_write(Path(path), lambda f: f.write(data))


def atomic_write(target: Path, encode: Callable[[BinaryIO], None]) -> None:
    """Encode into a hidden temporary file beside ``target``, then rename it over ``target``."""
    fd, temp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            encode(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(r"\.exposure-slot-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}\.tmp")
"""Our temporary files: host, writer pid, random part. Short and fixed-length, so that any
valid target name can be written (the name of the target is not part of it)."""


def _create_temp(target: Path) -> tuple[int, Path]:
    """Create ``.exposure-slot-<host>-<pid>-<random>.tmp`` beside ``target`` exclusively; the
    umask sets its permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        temp = target.with_name(f".exposure-slot-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except BaseException:
            # Ctrl-C can land just after the file was created, before the caller holds it:
            # O_EXCL makes a file of this random name ours, so remove it.
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    raise ImageWriteError(f"cannot write {target}: could not create a temporary file beside it")


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writers of this machine left in ``folder``.

    A temporary file is stale when its name says it was made on this host by a process that
    no longer exists (a writer killed with SIGKILL, or by a power cut, cannot clean up after
    itself). Files of live processes, and of other hosts sharing the folder, are left alone.
    Returns the removed paths; a folder that cannot be listed removes nothing.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or match[1] != _HOST or _process_exists(int(match[2])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` runs on this machine (always assumed on Windows, where os.kill kills)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, but belongs to another user
        pass
    return True
