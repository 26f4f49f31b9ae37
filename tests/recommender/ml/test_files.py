"""The one atomic, durable file writer every artifact goes through."""

import errno
import os
import stat

import numpy as np
import pytest

from recommender.ml import files
from recommender.ml.arrays import load_arrays, save_arrays
from recommender.ml.files import atomic_path, atomic_write, write_bytes_atomic


class WriteFailed(Exception):
    pass


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def _write_then_fail(target, data):
    with atomic_write(target) as handle:
        handle.write(data)
        raise WriteFailed


def test_a_write_replaces_the_target_atomically(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    reader = target.open("rb")  # A process that opened the old file before the write.

    with atomic_write(target) as handle:
        handle.write(b"new ")
        # Until the block ends, the target is the old file, whole.
        assert target.read_bytes() == b"old"
        handle.write(b"content")

    assert target.read_bytes() == b"new content"
    assert reader.read() == b"old"  # Replaced by a rename, not rewritten in place.
    reader.close()
    assert _names(tmp_path) == ["model.bin"]


def test_a_failure_mid_write_leaves_the_target_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    with pytest.raises(WriteFailed):
        _write_then_fail(target, b"half of the new ")

    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.bin"]


def test_a_failure_before_any_target_exists_leaves_nothing(tmp_path):
    with pytest.raises(WriteFailed):
        _write_then_fail(tmp_path / "new.bin", b"partial")

    assert _names(tmp_path) == []


def test_a_failed_fsync_leaves_the_target_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomic(target, b"new")

    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.bin"]


def test_a_failed_rename_removes_the_temporary_file(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # A file cannot replace a directory.

    with pytest.raises(IsADirectoryError):
        write_bytes_atomic(target, b"new")

    assert _names(tmp_path) == ["taken"]
    assert target.is_dir()


def test_the_file_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    synced = []
    real_fsync = os.fsync

    def spy(descriptor):
        kind = "directory" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"
        synced.append((kind, target.read_bytes()))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    write_bytes_atomic(target, b"new")

    assert synced == [("file", b"old"), ("directory", b"new")]


def test_the_directory_sync_can_be_left_to_the_caller(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda d: synced.append(stat.S_ISDIR(os.fstat(d).st_mode)))

    write_bytes_atomic(tmp_path / "manifest.json", b"{}", sync_directory=False)

    assert synced == [False]


def test_atomic_path_hands_a_writer_by_name_an_empty_file_under_the_chosen_name(tmp_path):
    target = tmp_path / "index.hnsw"
    temp = tmp_path / ".index.hnsw.0123456789abcdef.tmp"

    with atomic_path(target, temp=temp) as path:
        assert path == temp
        assert temp.read_bytes() == b""
        temp.write_bytes(b"graph")  # As a C library writing to a file name would.

    assert target.read_bytes() == b"graph"
    assert _names(tmp_path) == ["index.hnsw"]


def test_temporary_names_sit_beside_the_target_and_never_repeat(tmp_path):
    first = files.temp_path_for(tmp_path / "engine.bin")
    second = files.temp_path_for(tmp_path / "engine.bin")

    assert first.parent == tmp_path
    assert first.name.startswith("engine.bin.")
    assert first.name.endswith(".tmp")
    assert first != second


def test_a_new_file_gets_the_permissions_a_plain_open_gives(tmp_path):
    (tmp_path / "plain").write_bytes(b"x")

    written = write_bytes_atomic(tmp_path / "atomic", b"x")

    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_a_failed_save_of_the_engine_arrays_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_arrays(tmp_path / "engine.bin", {"x": np.arange(3)}, meta={"v": 1})

    def failing(descriptor):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        save_arrays(path, {"x": np.arange(1000)}, meta={"v": 2})
    monkeypatch.undo()

    stored = load_arrays(path)
    assert stored.meta == {"v": 1}
    assert stored["x"].tolist() == [0, 1, 2]
    assert _names(tmp_path) == ["engine.bin"]
