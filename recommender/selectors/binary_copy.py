"""Reading a whole table into numpy columns with PostgreSQL's binary ``COPY``.

A read of every event (the engine's fit, churn scoring) must not build one Python object per
row: at 50 million rows that is minutes and gigabytes. ``COPY (SELECT ...) TO STDOUT (FORMAT
binary)`` of NOT NULL fixed-width columns gives records of one size (a 16-bit field count, then
per field a 32-bit length and the big-endian value:
https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4), which numpy decodes a
block at a time, so the raw bytes never all sit in memory at once.

The COPY runs on a connection of its own: between two blocks the caller may use the database
(a job reports its progress), which the COPY's connection could not do until it ends. Inside a
transaction (a caller's, or a test's) only the transaction's own connection sees its rows, so
the COPY runs there and the blocks are handed out once it has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = 19  # Signature (11 bytes), flags (4), header extension length (4).
_TRAILER = 2  # A field count of -1.


def record_dtype(fields: Sequence[tuple[str, str]]) -> np.dtype:
    """The record of ``fields`` ((name, big-endian dtype such as ">i8"), in SELECT order)."""
    layout: list[tuple[str, str]] = [("__fields", ">i2")]
    for i, (name, dtype) in enumerate(fields):
        layout += [(f"__length{i}", ">i4"), (name, dtype)]
    return np.dtype(layout)


def copy_columns(
    query: str,
    params: Sequence[object],
    fields: Sequence[tuple[str, str, type[np.generic]]],
    *,
    block_bytes: int = 64 << 20,
) -> Iterator[dict[str, np.ndarray]]:
    """Blocks of ``{name: column}`` of ``query`` (a SELECT of NOT NULL fixed-width columns,
    ``fields`` = (name, big-endian dtype, output dtype) in its column order)."""
    record = record_dtype([(name, wire) for name, wire, _ in fields])
    size = record.itemsize

    def decode(data: bytes | bytearray) -> dict[str, np.ndarray]:
        rows = np.frombuffer(data, dtype=record)
        if len(rows) and (rows["__fields"] != len(fields)).any():
            raise ValueError("unexpected COPY record layout from PostgreSQL")
        return {name: rows[name].astype(out) for name, _, out in fields}

    statement = f"COPY ({query}) TO STDOUT (FORMAT binary)"
    shared = connections[DEFAULT_DB_ALIAS]
    if shared.in_atomic_block:
        yield from list(_copy_blocks(shared, statement, params, size=size, decode=decode,
                                     block_bytes=block_bytes))  # fmt: skip
        return
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        yield from _copy_blocks(
            own, statement, params, size=size, decode=decode, block_bytes=block_bytes
        )
    finally:
        own.close()


def _copy_blocks(
    own: BaseDatabaseWrapper,
    statement: str,
    params: Sequence[object],
    *,
    size: int,
    decode: Callable[[bytes | bytearray], dict[str, np.ndarray]],
    block_bytes: int,
) -> Iterator[dict[str, np.ndarray]]:
    with own.cursor() as cursor, cursor.cursor.copy(statement, list(params)) as copy:
        pending = bytearray()
        skip = -1  # Unknown until the header is complete.
        for block in copy:
            pending += block
            if skip < 0:
                if len(pending) < _HEADER:
                    continue
                if bytes(pending[:11]) != _SIGNATURE:
                    raise ValueError("unexpected COPY output from PostgreSQL")
                skip = _HEADER + int.from_bytes(pending[15:19], "big")
            if len(pending) - skip >= block_bytes:
                usable = (len(pending) - skip) // size * size
                yield decode(pending[skip : skip + usable])
                del pending[: skip + usable]
                skip = 0
        if skip < 0:
            raise ValueError("COPY from PostgreSQL ended before its header")
        usable = (len(pending) - skip - _TRAILER) // size * size
        if usable > 0:
            yield decode(pending[skip : skip + usable])
