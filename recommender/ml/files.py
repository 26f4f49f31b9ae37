"""The one atomic, durable way to replace a file. Framework-free (stdlib only).

Every artifact and cache file recsite writes (the engine's array file, the vector index's data
file and manifest, tuning samples, churn models, downloaded builds, evaluation caches) goes
through here, so they all behave the same:

1. the content is written to a temporary file beside the target (same directory, so the rename
   cannot cross file systems), created with the permissions a plain ``open`` gives;
2. the temporary file is fsynced, so its data is on disk before any name points at it;
3. ``os.replace`` renames it over the target: a reader sees the old file or the new one, never
   half of one;
4. the directory is fsynced, so the rename itself survives a crash;
5. on any failure before the rename (an exception in the writing block, a full disk, a failed
   fsync) the temporary file is removed and the target is left as it was.

:func:`atomic_write` yields a binary file handle; :func:`atomic_path` yields the temporary path
for writers that take a file name (hnswlib, boto3); :func:`write_bytes_atomic` writes bytes.
Temporary names default to ``<target name>.<random hex>.tmp``; a caller whose clean-up matches
its own pattern of names passes ``temp``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def temp_path_for(target: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside ``target``: ``<name>.<16 hex digits>.tmp``."""
    target = Path(target)
    return target.with_name(f"{target.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")


@contextmanager
def atomic_path(
    target: str | os.PathLike[str],
    *,
    temp: str | os.PathLike[str] | None = None,
    sync_directory: bool = True,
) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``target`` for the block to write by name;
    when the block returns, fsync it, rename it over ``target`` and fsync the directory.

    If the block (or the fsync, or the rename) raises, the temporary file is removed and the
    error propagates with ``target`` untouched. ``temp`` names the temporary file (it must not
    exist; default :func:`temp_path_for`). ``sync_directory=False`` leaves the directory's fsync
    to the caller (:func:`fsync_directory`), for one that must record the rename first.
    """
    target = Path(target)
    path = Path(temp) if temp is not None else temp_path_for(target)
    # Created here, exclusively: the name is ours, and a failure below always has a file to
    # remove. 0o666 less the umask, as a plain open() would create it.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    try:
        yield path
        fsync_file(path)
        os.replace(path, target)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if sync_directory:
        fsync_directory(target.parent)


@contextmanager
def atomic_write(
    target: str | os.PathLike[str],
    *,
    temp: str | os.PathLike[str] | None = None,
    sync_directory: bool = True,
) -> Iterator[BinaryIO]:
    """Yield a binary handle whose content replaces ``target`` atomically and durably when the
    block returns (see :func:`atomic_path`); if the block raises, ``target`` is untouched and
    no temporary file remains."""
    with (
        atomic_path(target, temp=temp, sync_directory=sync_directory) as path,
        open(path, "wb") as handle,
    ):
        yield handle


def write_bytes_atomic(
    target: str | os.PathLike[str],
    data: bytes,
    *,
    temp: str | os.PathLike[str] | None = None,
    sync_directory: bool = True,
) -> Path:
    """Replace ``target`` with ``data`` atomically and durably; returns ``target``."""
    with atomic_write(target, temp=temp, sync_directory=sync_directory) as handle:
        handle.write(data)
    return Path(target)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush ``path``'s data to disk (whichever descriptor wrote it)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename into it) to disk."""
    fsync_file(path)
