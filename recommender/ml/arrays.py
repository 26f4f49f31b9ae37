"""One file of named numpy arrays that every process memory-maps read-only. Framework-free.

The engine artifact is written once by a worker and read by every web process. Laid out as one
file of raw, aligned arrays, it is mapped rather than read: the pages live once in the operating
system's page cache, shared by every process that maps the file (N gunicorn workers cost one
copy, not N), and loading is instant whatever the catalogue size.

Layout: ``MAGIC`` (8 bytes), the header length (8 bytes, little-endian), a UTF-8 JSON header
(``{"meta": ..., "arrays": {name: {"dtype", "shape", "offset"}}}``), then each array's raw bytes
in C order, each starting at a multiple of ``ALIGN`` bytes from the data start, which is itself
page-aligned. Offsets are relative to the data start, so the header's length does not move them.

:func:`save_arrays` writes through :func:`recommender.ml.files.atomic_write` (a temporary file
beside the target, fsynced, renamed over it): a reader sees the old file or the new one, never
half of one.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write

MAGIC = b"RSARRAY1"
ALIGN = 64
_PAGE = 4096


class ArrayFileError(ValueError):
    """A file that is not an array file of this format, or a damaged one."""


@dataclass(frozen=True)
class ArrayFile:
    """What :func:`load_arrays` returns: the header's metadata and the (read-only) arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays


def _aligned(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def save_arrays(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *, meta: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    path = Path(path)
    layout: dict[str, dict[str, Any]] = {}
    offset = 0
    prepared: list[tuple[int, np.ndarray]] = []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"{name}: object arrays cannot be memory-mapped")
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        array = np.ascontiguousarray(array)
        offset = _aligned(offset, ALIGN)
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        prepared.append((offset, array))
        offset += array.nbytes
    header = json.dumps({"meta": dict(meta), "arrays": layout}).encode()
    data_start = _aligned(len(MAGIC) + 8 + len(header), _PAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(MAGIC)
        handle.write(len(header).to_bytes(8, "little"))
        handle.write(header)
        position = len(MAGIC) + 8 + len(header)
        for relative, array in prepared:
            target = data_start + relative
            handle.write(b"\0" * (target - position))
            handle.write(array.data.cast("B") if array.nbytes else b"")
            position = target + array.nbytes
    return path


def is_array_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like an array file (cheap: reads 8 bytes)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def load_arrays(path: str | os.PathLike[str]) -> ArrayFile:
    """Map ``path`` read-only; every array is a view of the shared mapping (no copy)."""
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ArrayFileError(f"{path}: not a recsite array file")
        size = int.from_bytes(handle.read(8), "little")
        try:
            header = json.loads(handle.read(size).decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArrayFileError(f"{path}: damaged header ({exc})") from exc
        total = os.fstat(handle.fileno()).st_size
        data_start = _aligned(len(MAGIC) + 8 + size, _PAGE)
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if total else None
    arrays: dict[str, np.ndarray] = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(x) for x in spec["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        start = data_start + int(spec["offset"])
        if start + count * dtype.itemsize > total:
            raise ArrayFileError(f"{path}: array {name!r} runs past the end of the file")
        if count == 0:
            arrays[name] = np.empty(shape, dtype=dtype)
            continue
        assert mapped is not None
        array = np.frombuffer(mapped, dtype=dtype, count=count, offset=start).reshape(shape)
        arrays[name] = array
    return ArrayFile(meta=header["meta"], arrays=arrays)


class StringTable:
    """Many strings as one UTF-8 blob plus offsets: two arrays instead of a million objects."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def from_strings(cls, strings: Sequence[str]) -> StringTable:
        encoded = [s.encode() for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        if encoded:
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return cls(blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.blob[start:end].tobytes().decode()

    def tolist(self) -> list[str]:
        return [self[i] for i in range(len(self))]
