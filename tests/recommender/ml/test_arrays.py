"""The memory-mapped array file of the engine artifact."""

import mmap
from typing import Any

import numpy as np
import pytest

from recommender.ml.arrays import ArrayFileError, StringTable, load_arrays, save_arrays


def test_arrays_round_trip_as_read_only_views_of_one_mapping(tmp_path):
    arrays: dict[str, np.ndarray] = {
        "ids": np.array([3, 5, 9], dtype=np.int64),
        "vectors": np.arange(12, dtype=np.float32).reshape(3, 4),
        "flags": np.array([True, False, True]),
        "empty": np.empty(0, dtype=np.int32),
        "big_endian": np.array([1.5, 2.5], dtype=">f8"),
    }
    path = save_arrays(tmp_path / "engine.bin", arrays, meta={"version": 2, "names": ["a"]})

    stored = load_arrays(path)

    assert stored.meta == {"version": 2, "names": ["a"]}
    for name, array in arrays.items():
        assert np.array_equal(stored[name], array)
    assert stored["big_endian"].dtype == np.dtype("<f8")
    assert stored["vectors"].shape == (3, 4)
    # Views of the file's mapping, not copies: every process shares the same pages.
    base: Any = stored["ids"]
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base.obj, mmap.mmap)
    assert not stored["ids"].flags.owndata
    with pytest.raises(ValueError, match="read-only"):
        stored["ids"][0] = 1
    assert list(tmp_path.iterdir()) == [path]  # No temporary file is left behind.


def test_every_array_starts_aligned(tmp_path):
    path = save_arrays(
        tmp_path / "a.bin",
        {"odd": np.ones(3, dtype=np.int8), "wide": np.ones(5, dtype=np.float64)},
        meta={},
    )
    stored = load_arrays(path)
    assert stored["wide"].ctypes.data % 64 == 0


def test_a_foreign_or_truncated_file_is_refused_with_its_path(tmp_path):
    foreign = tmp_path / "engine.npz"
    np.savez(foreign, ids=np.arange(3))
    with pytest.raises(ArrayFileError, match="not a recsite array file"):
        load_arrays(foreign)
    path = save_arrays(tmp_path / "b.bin", {"x": np.arange(1000, dtype=np.int64)}, meta={})
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(ArrayFileError, match="array 'x' runs past the end of the file"):
        load_arrays(path)


def test_string_table_keeps_a_million_titles_in_two_arrays():
    titles = ["WHITE HANGING HEART", "", "café crème", "Ø 12 cm"]
    table = StringTable.from_strings(titles)
    assert [table[i] for i in range(4)] == titles
    assert table[-1] == "Ø 12 cm"
    assert table.tolist() == titles
    assert table.blob.dtype == np.uint8
    with pytest.raises(IndexError):
        table[4]
