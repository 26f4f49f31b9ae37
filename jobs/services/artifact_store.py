"""Where build artifacts live: a shared filesystem path (default) or S3-compatible storage.

A build of an artifact (a vector index build, an engine build; later a churn or tagging model) is
a *file set*: a main file plus files beside it whose names start with the main file's base name
and a dot (``build-12-3fa9c1d2.json`` and ``build-12-3fa9c1d2.json.<token>.hnsw``). Every name is
unique to its build, and no file is ever written again once its build is published, so readers
never need to invalidate anything.

Publication is atomic across hosts because nothing names a build before all of its files are
complete: a writer saves the files (each by an atomic rename), uploads them when the store is
remote, and only then marks the build row READY in the database, which is the single commit
point every reader goes through. A failed build deletes what it wrote; one killed mid-way leaves
unnamed files that :func:`~jobs.services.artifacts.artifacts_sweep` removes later.

Stores (``RECSITE_ARTIFACT_STORE``):

``filesystem``
    Files live under ``RECSITE_ARTIFACT_DIR`` (default ``RECSITE_INDEX_DIR``), in one folder per
    kind (``index/``, ``engine/``). On several hosts this must be one shared mount (NFS or
    similar), mounted at the same path everywhere: a build row records the absolute path of its
    main file.
``s3``
    Files live in an S3-compatible bucket through django-storages (``STORAGES["artifacts"]``):
    ``s3://<bucket>/<prefix>/<kind>/<file>``, the URI a build row records. Writers save into the
    local cache folder ``RECSITE_ARTIFACT_CACHE_DIR`` and upload from there; readers download a
    build once into the same folder (data files first, the main file last, each under a
    temporary name renamed into place, one downloader per host at a time) and then load or
    memory-map the local copy. Cached builds whose rows are no longer READY or BUILDING are
    removed after each download, so the cache holds at most the kept builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from recommender.ml.files import atomic_path

logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"
# Partial downloads and crashed uploads older than this are removed from the cache.
_STALE_TEMP_SECONDS = 24 * 3600
# A build's files: its main file's base name (up to the first dot), then a dot, optionally
# hidden (the temporary files of an interrupted save start with a dot).
_BUILD_PK = re.compile(r"^\.?[a-z]+-(\d+)[-.]")


class ArtifactStoreError(RuntimeError):
    """The artifact store is misconfigured or unreachable, or a build's files are missing."""


def build_base(name: str) -> str:
    """The base name shared by every file of the build whose main file is ``name``."""
    return name.split(".", 1)[0]


def belongs_to(filename: str, base: str) -> bool:
    """True when ``filename`` is a file of the build with base name ``base``."""
    name = filename.removeprefix(".")
    return name == base or name.startswith(base + ".")


def build_pk_of(filename: str) -> int | None:
    """The build primary key encoded in an artifact file name (``build-12-…``), if any."""
    match = _BUILD_PK.match(filename)
    return int(match.group(1)) if match else None


def unique_name(prefix: str, pk: int, suffix: str) -> str:
    """A build's main file name: never reused, even if a primary key is (SQLite rollbacks)."""
    return f"{prefix}-{pk}-{secrets.token_hex(4)}{suffix}"


class ArtifactStore(Protocol):
    """What the build services need from a store (see the module docstring)."""

    def describe(self) -> str:
        """Where artifacts go, for messages (no credentials)."""
        ...

    def staging_dir(self, kind: str) -> Path:
        """The local folder a writer saves a new build of ``kind`` into."""
        ...

    def publish(self, main: Path, *, kind: str) -> str:
        """Make the build whose main file is ``main`` (in :meth:`staging_dir`) readable from
        every host; returns the location its row records. Raises ArtifactStoreError."""
        ...

    def local(self, location: str) -> Path:
        """A local path of the build's main file, downloading the build first if needed."""
        ...

    def delete(self, location: str, *, kind: str) -> None:
        """Remove the build's files from the store (and from this host's cache)."""
        ...

    def names(self, kind: str) -> list[str]:
        """Every file name stored for ``kind``, including leftovers of failed builds."""
        ...

    def remove(self, kind: str, names: list[str]) -> None:
        """Remove these files of ``kind`` (the sweep of unnamed builds)."""
        ...

    def cache_prune(self, kind: str, live: Callable[[], Collection[int]]) -> int:
        """Remove this host's cached files of builds whose primary key is not in ``live()``
        (called after listing, so a build started meanwhile is never mistaken for a dead one)."""
        ...

    def check(self) -> None:
        """Raise ArtifactStoreError naming the problem if the store cannot be used."""
        ...


# Filesystem ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilesystemStore:
    """Artifacts under a local or shared folder; a build row records its main file's path."""

    root: Path

    def describe(self) -> str:
        return f"filesystem store {self.root}"

    def staging_dir(self, kind: str) -> Path:
        return _folder(self.root / kind, setting="RECSITE_ARTIFACT_DIR")

    def publish(self, main: Path, *, kind: str) -> str:
        # Saved in place by atomic renames: the row that names it is the commit point.
        if not main.is_file():
            raise ArtifactStoreError(f"{main}: the build's main file was not written")
        return str(main)

    def local(self, location: str) -> Path:
        if location.startswith(S3_SCHEME):
            raise ArtifactStoreError(
                f"build {location} is in object storage but RECSITE_ARTIFACT_STORE is "
                "'filesystem': configure the S3 store (docs/deployment.md)"
            )
        return Path(location)

    def delete(self, location: str, *, kind: str) -> None:
        path = self.local(location)
        if path.parent.is_dir():
            self.remove_build_files(path.parent, build_base(path.name))

    def names(self, kind: str) -> list[str]:
        directory = self.root / kind
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    def remove(self, kind: str, names: list[str]) -> None:
        for name in names:
            (self.root / kind / name).unlink(missing_ok=True)

    def cache_prune(self, kind: str, live: Callable[[], Collection[int]]) -> int:
        return 0  # Readers use the shared files in place; there is no cache.

    def check(self) -> None:
        _folder(self.root, setting="RECSITE_ARTIFACT_DIR")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ArtifactStoreError(f"RECSITE_ARTIFACT_DIR: {self.root} is not writable")

    @staticmethod
    def remove_build_files(directory: Path, base: str) -> None:
        """Remove the files of build ``base`` from ``directory`` (temporary ones included)."""
        for entry in directory.iterdir():
            if entry.is_file() and belongs_to(entry.name, base):
                entry.unlink(missing_ok=True)


# S3-compatible object storage ---------------------------------------------------------------


class S3Store:
    """Artifacts in an S3-compatible bucket (django-storages), read through a local cache."""

    def __init__(self, storage: Any, cache_dir: Path) -> None:
        self.storage = storage  # storages.backends.s3.S3Storage
        self.cache_dir = cache_dir
        self.bucket_name: str = storage.bucket_name or ""
        self.prefix: str = (storage.location or "").strip("/")

    def describe(self) -> str:
        endpoint = self.storage.endpoint_url or "the AWS default endpoint"
        return f"S3 store {self._uri('')} at {endpoint}"

    def staging_dir(self, kind: str) -> Path:
        return self._cache_kind(kind)

    def publish(self, main: Path, *, kind: str) -> str:
        base = build_base(main.name)
        files = sorted(
            (p for p in main.parent.iterdir() if p.is_file() and p.name.startswith(base + ".")),
            # The main file last, after the data files it names (the row commits it anyway).
            key=lambda p: (p.name == main.name, p.name),
        )
        if main not in files:
            raise ArtifactStoreError(f"{main}: the build's main file was not written")
        uploaded: list[str] = []
        try:
            for path in files:
                key = f"{kind}/{path.name}"
                with path.open("rb") as handle:
                    self.storage.save(key, handle)
                uploaded.append(key)
        except Exception as exc:
            for key in uploaded:  # Nothing half-published: remove what did go up.
                with contextlib.suppress(Exception):
                    self.storage.delete(key)
            raise ArtifactStoreError(
                f"cannot upload {main.name} to {self.describe()}: {_explain(exc)}"
            ) from exc
        return self._uri(f"{kind}/{main.name}")

    def local(self, location: str) -> Path:
        if not location.startswith(S3_SCHEME):
            return Path(location)  # A build written to the filesystem store before a switch.
        kind, name = self._kind_and_name(location)
        directory = self._cache_kind(kind)
        main = directory / name
        if main.is_file():
            return main
        with _locked(directory / f".{build_base(name)}.lock"):
            if main.is_file():  # Another process of this host downloaded it meanwhile.
                return main
            self._download(kind, name, directory)
        return main

    def delete(self, location: str, *, kind: str) -> None:
        if not location.startswith(S3_SCHEME):
            FilesystemStore(Path(location).parent).delete(location, kind=kind)
            return
        kind, name = self._kind_and_name(location)
        base = build_base(name)
        self.remove(kind, [n for n in self.names(kind) if belongs_to(n, base)])
        cached = self.cache_dir / kind
        if cached.is_dir():
            FilesystemStore.remove_build_files(cached, base)

    def names(self, kind: str) -> list[str]:
        try:
            _, files = self.storage.listdir(kind)
        except Exception as exc:
            raise ArtifactStoreError(
                f"cannot list {self._uri(kind)} at {self.describe()}: {_explain(exc)}"
            ) from exc
        return sorted(files)

    def remove(self, kind: str, names: list[str]) -> None:
        for name in names:
            try:
                self.storage.delete(f"{kind}/{name}")
            except Exception as exc:
                raise ArtifactStoreError(
                    f"cannot delete {self._uri(f'{kind}/{name}')}: {_explain(exc)}"
                ) from exc

    def cache_prune(self, kind: str, live: Callable[[], Collection[int]]) -> int:
        directory = self.cache_dir / kind
        if not directory.is_dir():
            return 0
        entries = list(directory.iterdir())
        keep = set(live())
        removed = 0
        now = time.time()
        for entry in entries:
            pk = build_pk_of(entry.name)
            if pk is not None and pk in keep:
                continue
            if pk is None and now - entry.stat().st_mtime < _STALE_TEMP_SECONDS:
                continue  # A download in progress (temporary name); stale ones go.
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def check(self) -> None:
        if not self.bucket_name:
            raise ArtifactStoreError(
                "RECSITE_ARTIFACT_S3_BUCKET is empty: the S3 artifact store needs a bucket name"
            )
        try:
            self.storage.connection.meta.client.head_bucket(Bucket=self.bucket_name)
        except Exception as exc:
            raise ArtifactStoreError(f"{self.describe()} is not usable: {_explain(exc)}") from exc
        _folder(self.cache_dir, setting="RECSITE_ARTIFACT_CACHE_DIR")

    # Helpers ----------------------------------------------------------------------------------

    def _uri(self, key: str) -> str:
        parts = [p for p in (self.bucket_name, self.prefix, key) if p]
        return S3_SCHEME + "/".join(parts)

    def _kind_and_name(self, location: str) -> tuple[str, str]:
        root = self._uri("") + "/"
        if not location.startswith(root):
            raise ArtifactStoreError(
                f"build {location} is not in the configured store {root} "
                "(RECSITE_ARTIFACT_S3_BUCKET / RECSITE_ARTIFACT_S3_PREFIX changed?)"
            )
        key = location[len(root) :]
        kind, _, name = key.rpartition("/")
        if not kind or not name:
            raise ArtifactStoreError(f"build {location}: not a <kind>/<file> key")
        return kind, name

    def _cache_kind(self, kind: str) -> Path:
        return _folder(self.cache_dir / kind, setting="RECSITE_ARTIFACT_CACHE_DIR")

    def _object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _download(self, kind: str, name: str, directory: Path) -> None:
        base = build_base(name)
        files = [n for n in self.names(kind) if n.startswith(base + ".")]
        if name not in files:
            raise ArtifactStoreError(f"{self._uri(f'{kind}/{name}')} does not exist")
        started = time.perf_counter()
        size = 0
        client = self.storage.connection.meta.client
        for filename in sorted(files, key=lambda n: n == name):  # The main file last.
            target = directory / filename
            if target.is_file() and filename != name:
                continue  # A data file an interrupted download already completed.
            temp = directory / f".{filename}.download-{secrets.token_hex(4)}"
            try:
                with atomic_path(target, temp=temp) as path:
                    # boto3's managed transfer: parallel ranged GETs, no copy held in memory.
                    client.download_file(
                        self.bucket_name,
                        self._object_key(f"{kind}/{filename}"),
                        str(path),
                        Config=self.storage.transfer_config,
                    )
            except Exception as exc:
                raise ArtifactStoreError(
                    f"cannot download {self._uri(f'{kind}/{filename}')}: {_explain(exc)}"
                ) from exc
            size += target.stat().st_size
        logger.info(
            "Downloaded %s (%d files, %.1f MB) into %s in %.1f s",
            self._uri(f"{kind}/{name}"),
            len(files),
            size / 1e6,
            directory,
            time.perf_counter() - started,
        )


def _folder(directory: Path, *, setting: str) -> Path:
    """``directory``, created if need be; ArtifactStoreError naming ``setting`` if it cannot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactStoreError(
            f"{setting}: cannot create {directory}: {exc.strerror or exc}"
        ) from exc
    return directory


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _explain(exc: BaseException) -> str:
    """A message an operator can act on, from boto3's exceptions."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return "the bucket does not exist (RECSITE_ARTIFACT_S3_BUCKET)"
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (
                f"access denied ({code}): check RECSITE_ARTIFACT_S3_ACCESS_KEY_ID and "
                "RECSITE_ARTIFACT_S3_SECRET_ACCESS_KEY"
            )
        return f"{code}: {error.get('Message', '')}".strip()
    name = type(exc).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return f"the endpoint is unreachable (RECSITE_ARTIFACT_S3_ENDPOINT_URL): {exc}"
    if name == "NoCredentialsError":
        return "no credentials: set RECSITE_ARTIFACT_S3_ACCESS_KEY_ID and ..._SECRET_ACCESS_KEY"
    return f"{name}: {exc}"


def artifact_store() -> ArtifactStore:
    """The configured store (``RECSITE_ARTIFACT_STORE``)."""
    kind = settings.RECSITE_ARTIFACT_STORE
    if kind == "filesystem":
        return FilesystemStore(Path(settings.RECSITE_ARTIFACT_DIR or settings.RECSITE_INDEX_DIR))
    if kind == "s3":
        from django.core.files.storage import storages

        if "artifacts" not in settings.STORAGES:
            raise ArtifactStoreError(
                "RECSITE_ARTIFACT_STORE is 's3' but STORAGES has no 'artifacts' entry"
            )
        try:
            # A new instance per call (calls are rare: loads, publications, pruning), so a forked
            # process never shares the parent's connection pool.
            storage = storages.create_storage(settings.STORAGES["artifacts"])
        except Exception as exc:
            raise ArtifactStoreError(
                f"the S3 artifact store cannot be created: {_explain(exc)}"
            ) from exc
        return S3Store(storage, Path(settings.RECSITE_ARTIFACT_CACHE_DIR))
    raise ArtifactStoreError(f"RECSITE_ARTIFACT_STORE: expected 'filesystem' or 's3', got {kind!r}")
