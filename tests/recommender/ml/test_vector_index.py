"""The hnswlib vector index, its exact side buffer and the merge of the two. No database."""

import json
import re
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from recommender.ml.vector_index import (
    ExactBuffer,
    IndexInfo,
    QueryResult,
    VectorIndex,
    VectorIndexFileError,
    exact_search,
    merge_results,
    query_with_buffer,
    recall_at_k,
)
from tests.conftest import REPO_ROOT

SQRT_HALF = float(np.float32(np.sqrt(0.5)))


def unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def random_unit(n: int, dim: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return unit(rng.standard_normal((n, dim)).tolist())


def clustered(n: int, dim: int, *, clusters: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(0, clusters, size=n)] + spread * rng.standard_normal((n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact_ids(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    found, _ = exact_search(vectors=vectors, ids=ids, queries=query[None, :], k=k)
    return found[0].tolist()


@pytest.fixture(scope="module")
def small():
    """600 random vectors under sparse ids; at this size the graph search is exact."""
    vectors = random_unit(600, 16, seed=7)
    ids = np.arange(600, dtype=np.int64) * 10 + 3
    index = VectorIndex.build(ids=ids, vectors=vectors, num_threads=1)
    return ids, vectors, index


# A tiny hand-built case -------------------------------------------------------------------------

HAND_IDS = np.array([1, 2, 3, 4, 5])
HAND_VECTORS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [-1, 0, 0]], dtype=np.float32)


def test_query_of_a_hand_built_index_returns_cosine_similarities_best_first():
    index = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS * 3.0)  # Normalised on build.

    [result] = index.query(np.array([2.0, 0.0, 0.0]), k=2)

    assert result.ids.tolist() == [1, 4]
    assert result.scores.tolist() == pytest.approx([1.0, SQRT_HALF], abs=1e-6)
    assert result.ids.dtype == np.int64
    assert result.scores.dtype == np.float32


def test_query_with_k_above_the_catalogue_size_returns_every_item():
    index = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS)

    [result] = index.query(np.array([0.0, 1.0, 0.0]), k=50)

    assert result.ids.tolist()[:2] == [2, 4]
    assert sorted(result.ids.tolist()) == [1, 2, 3, 4, 5]
    assert result.scores[-1] == pytest.approx(0.0, abs=1e-6)


def test_batch_query_returns_one_result_per_row_in_order():
    index = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS)

    results = index.query(np.array([[0.0, 0.0, 5.0], [-1.0, 0.0, 0.0]]), k=1)

    assert [r.pairs() for r in results] == [[(3, pytest.approx(1.0))], [(5, pytest.approx(1.0))]]


def test_metadata_membership_and_stored_vectors():
    index = VectorIndex.build(
        ids=HAND_IDS, vectors=HAND_VECTORS, m=8, ef_construction=50, ef_search=20
    )

    assert index.info == IndexInfo(dim=3, count=5, space="cosine", m=8, ef_construction=50)
    assert index.ef_search == 20
    assert len(index) == 5
    assert index.ids.tolist() == [1, 2, 3, 4, 5]
    assert 4 in index
    assert 6 not in index
    assert index.vectors_of([4]).tolist() == [pytest.approx([SQRT_HALF, SQRT_HALF, 0.0])]
    with pytest.raises(KeyError, match=re.escape("ids not in the index: [9]")):
        index.vectors_of([1, 9])


# Save and load ----------------------------------------------------------------------------------


def test_save_then_load_gives_identical_results_and_metadata(tmp_path, small):
    ids, vectors, index = small
    queries = random_unit(20, 16, seed=8)
    path = tmp_path / "build-1.idx"

    assert index.save(path) == path
    loaded = VectorIndex.load(path, ef_search=40)

    assert loaded.info == IndexInfo(dim=16, count=600, space="cosine", m=16, ef_construction=200)
    assert loaded.ef_search == 40
    assert loaded.ids.tolist() == sorted(ids.tolist())
    before = [r.pairs() for r in index.query(queries, k=10)]
    after = [r.pairs() for r in loaded.query(queries, k=10)]
    assert after == before
    manifest = json.loads(path.read_text())
    data_files = sorted(p.name for p in tmp_path.iterdir() if p != path)
    assert data_files == [manifest["data_file"]]
    assert re.fullmatch(r"build-1\.idx\.[0-9a-f]{16}\.hnsw", manifest["data_file"])
    assert {key: manifest[key] for key in ("format", "version", "dim", "count", "space")} == {
        "format": "recsite-vector-index",
        "version": 1,
        "dim": 16,
        "count": 600,
        "space": "cosine",
    }
    assert (manifest["m"], manifest["ef_construction"]) == (16, 200)
    assert manifest["data_bytes"] == (tmp_path / manifest["data_file"]).stat().st_size


def test_saving_over_an_index_replaces_it_and_removes_the_old_data_file(tmp_path, small):
    _, _, index = small
    path = tmp_path / "current.idx"
    index.save(path)
    old_data = json.loads(path.read_text())["data_file"]
    replacement = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS)

    replacement.save(path)

    new_data = json.loads(path.read_text())["data_file"]
    assert new_data != old_data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.idx", new_data]
    assert VectorIndex.load(path).ids.tolist() == [1, 2, 3, 4, 5]


def test_empty_catalogue_builds_saves_loads_and_returns_nothing(tmp_path):
    index = VectorIndex.build(
        ids=np.empty(0, dtype=np.int64), vectors=np.empty((0, 8), dtype=np.float32)
    )
    path = index.save(tmp_path / "empty.idx")
    loaded = VectorIndex.load(path)

    assert loaded.info == IndexInfo(dim=8, count=0, space="cosine", m=16, ef_construction=200)
    assert [len(r) for r in loaded.query(np.ones((2, 8)), k=5)] == [0, 0]
    assert loaded.self_check() == 1.0


def test_delete_saved_removes_the_manifest_and_its_data_file(tmp_path, small):
    _, _, index = small
    other = index.save(tmp_path / "keep.idx")
    path = index.save(tmp_path / "old.idx")

    VectorIndex.delete_saved(path)

    manifest = json.loads(other.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.idx", manifest["data_file"]]


CHILD_SAVE = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from recommender.ml.vector_index import VectorIndex

    path, limit, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    vectors = np.random.default_rng(1).standard_normal((2000, 16)).astype(np.float32)
    index = VectorIndex.build(ids=np.arange(2000), vectors=vectors, num_threads=1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if mode == "kill":
        # Python ignores SIGXFSZ; restoring the default makes the kernel kill the process on
        # the write that crosses the limit, in the middle of hnswlib writing the index.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    index.save(path)
    """
)


def save_in_child_with_file_size_limit(path: Path, *, limit: int, mode: str):
    return subprocess.run(
        [sys.executable, "-c", CHILD_SAVE, str(path), str(limit), mode],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_failed_write_during_save_leaves_the_previous_index_and_no_temporary_files(
    tmp_path, small
):
    _, _, index = small
    path = index.save(tmp_path / "live.idx")
    before = sorted(p.name for p in tmp_path.iterdir())
    queries = random_unit(5, 16, seed=9)
    expected = [r.pairs() for r in index.query(queries, k=5)]

    # The new index is 425 kB; writes past 200 kB fail (EFBIG), which hnswlib does not report.
    child = save_in_child_with_file_size_limit(path, limit=200_000, mode="fail")

    assert child.returncode == 1
    assert re.search(r"OSError: \S+: wrote 200000 of \d+ bytes of the index", child.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert [r.pairs() for r in VectorIndex.load(path).query(queries, k=5)] == expected


def test_a_crash_during_save_leaves_the_previous_index_and_the_next_save_cleans_up(tmp_path, small):
    _, _, index = small
    path = index.save(tmp_path / "live.idx")
    before = sorted(p.name for p in tmp_path.iterdir())
    queries = random_unit(5, 16, seed=9)
    expected = [r.pairs() for r in index.query(queries, k=5)]

    child = save_in_child_with_file_size_limit(path, limit=200_000, mode="kill")

    assert child.returncode == -signal.SIGXFSZ
    leftovers = sorted({p.name for p in tmp_path.iterdir()} - set(before))
    assert len(leftovers) == 1
    assert re.fullmatch(r"\.live\.idx\.[0-9a-f]{16}\.hnsw\.tmp", leftovers[0])
    assert (tmp_path / leftovers[0]).stat().st_size == 200_000  # Torn, never committed.
    assert [r.pairs() for r in VectorIndex.load(path).query(queries, k=5)] == expected

    index.save(path)

    data_file = json.loads(path.read_text())["data_file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.idx", data_file]


def test_build_failure_after_a_good_save_leaves_the_saved_index_untouched(tmp_path, small):
    _, vectors, index = small
    path = index.save(tmp_path / "live.idx")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    broken = vectors.copy()
    broken[3, 0] = np.nan

    with pytest.raises(ValueError, match="contains NaN"):
        VectorIndex.build(ids=np.arange(600), vectors=broken).save(path)

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_load_refuses_a_torn_data_file(tmp_path, small):
    _, _, index = small
    path = index.save(tmp_path / "live.idx")
    data_path = tmp_path / json.loads(path.read_text())["data_file"]
    size = data_path.stat().st_size
    with data_path.open("r+b") as handle:
        handle.truncate(size - 100)

    with pytest.raises(
        VectorIndexFileError,
        match=re.escape(
            f"{data_path}: data file has {size - 100} bytes but the manifest {path} records "
            f"{size}; the file is torn or was replaced"
        ),
    ):
        VectorIndex.load(path)


def test_load_refuses_a_manifest_whose_data_file_is_missing(tmp_path, small):
    _, _, index = small
    path = index.save(tmp_path / "live.idx")
    data_path = tmp_path / json.loads(path.read_text())["data_file"]
    data_path.unlink()

    with pytest.raises(VectorIndexFileError, match=re.escape(f"{data_path}: cannot load")):
        VectorIndex.load(path)


def test_load_refuses_a_file_that_is_not_a_manifest(tmp_path):
    (tmp_path / "other.idx").write_text('{"format": "something-else"}')
    (tmp_path / "newer.idx").write_text('{"format": "recsite-vector-index", "version": 2}')

    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing.idx")
    with pytest.raises(VectorIndexFileError, match="not a recsite-vector-index manifest"):
        VectorIndex.load(tmp_path / "other.idx")
    with pytest.raises(VectorIndexFileError, match="manifest version 2 is not supported"):
        VectorIndex.load(tmp_path / "newer.idx")


def test_save_into_a_missing_directory_is_refused(tmp_path, small):
    _, _, index = small

    with pytest.raises(FileNotFoundError, match="does not exist"):
        index.save(tmp_path / "nowhere" / "live.idx")


# Exclusion and filtering ------------------------------------------------------------------------


def test_exclude_drops_ids_and_still_returns_k(small):
    ids, vectors, index = small
    query = vectors[0]
    nearest = exact_ids(vectors, ids, query, 8)
    excluded = set(nearest[:5])

    [result] = index.query(query, k=10, exclude=excluded)

    keep = ~np.isin(ids, list(excluded))
    assert result.ids.tolist() == exact_ids(vectors[keep], ids[keep], query, 10)
    assert result.ids.tolist()[:3] == nearest[5:8]


def test_a_long_exclude_list_uses_the_filter_and_still_returns_k(small):
    ids, vectors, index = small
    query = vectors[1]
    excluded = set(exact_ids(vectors, ids, query, 100))  # Above the over-fetch limit of 64.

    [result] = index.query(query, k=10, exclude=excluded)

    keep = ~np.isin(ids, list(excluded))
    assert result.ids.tolist() == exact_ids(vectors[keep], ids[keep], query, 10)


def test_allowed_set_restricts_results(small):
    ids, vectors, index = small
    query = vectors[2]
    allowed = set(ids[::7].tolist()) | {999_999}  # An id the index does not hold is ignored.

    [result] = index.query(query, k=10, allowed=allowed, exclude=[int(ids[7])])

    keep = np.isin(ids, list(allowed)) & (ids != ids[7])
    assert result.ids.tolist() == exact_ids(vectors[keep], ids[keep], query, 10)


def test_allowed_predicate_restricts_results(small):
    ids, vectors, index = small
    query = vectors[3]

    [result] = index.query(query, k=10, allowed=lambda i: i % 20 == 13, exclude={13})

    keep = (ids % 20 == 13) & (ids != 13)
    assert result.ids.tolist() == exact_ids(vectors[keep], ids[keep], query, 10)


def test_fewer_permitted_ids_than_k_returns_all_of_them_best_first(small):
    ids, vectors, index = small
    query = vectors[4]
    few = [int(i) for i in ids[[10, 20, 30]]]

    from_set = index.query(query, k=10, allowed=set(few))[0]
    from_predicate = index.query(query, k=10, allowed=lambda i: i in few)[0]
    all_but_two = index.query(query, k=10, exclude=set(ids[2:].tolist()))[0]

    expected = exact_ids(vectors[[10, 20, 30]], ids[[10, 20, 30]], query, 10)
    assert from_set.ids.tolist() == expected
    assert from_predicate.ids.tolist() == expected
    assert sorted(all_but_two.ids.tolist()) == ids[:2].tolist()


def test_large_allowed_set_goes_through_the_graph_filter():
    vectors = random_unit(9000, 8, seed=11)
    ids = np.arange(9000, dtype=np.int64)
    index = VectorIndex.build(ids=ids, vectors=vectors, num_threads=1)
    allowed = set(range(0, 9000, 2))  # 4,500: above the exact-search limit of 4,096.

    results = index.query(vectors[:20], k=10, allowed=allowed, exclude={0})

    for result in results:
        assert len(result) == 10
        assert all(i % 2 == 0 and i != 0 for i in result.ids.tolist())


def test_nothing_permitted_gives_empty_results(small):
    ids, vectors, index = small

    assert len(index.query(vectors[0], k=5, allowed=set())[0]) == 0
    assert len(index.query(vectors[0], k=5, allowed=lambda i: False)[0]) == 0
    assert len(index.query(vectors[0], k=5, exclude=ids.tolist())[0]) == 0


def test_concurrent_queries_from_threads_match_sequential_ones(small):
    _, _, index = small
    queries = random_unit(200, 16, seed=12)
    sequential = [index.query(q, k=10)[0].pairs() for q in queries]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda q: index.query(q, k=10)[0].pairs(), queries))

    assert concurrent == sequential


# Self-check -------------------------------------------------------------------------------------


def test_self_check_on_clustered_data_with_default_parameters():
    vectors = clustered(4000, 32, clusters=40, spread=0.12, seed=3)
    index = VectorIndex.build(ids=np.arange(4000), vectors=vectors, num_threads=1)

    assert index.self_check(sample_size=500, k=10, seed=0) >= 0.99


def test_self_check_reports_a_poor_index_as_poor():
    vectors = clustered(4000, 32, clusters=40, spread=0.12, seed=3)
    index = VectorIndex.build(
        ids=np.arange(4000), vectors=vectors, m=4, ef_construction=10, ef_search=1, num_threads=1
    )

    assert index.self_check(sample_size=500, k=10, seed=0) < 0.9


def test_self_check_counts_queries_a_disconnected_graph_cannot_answer_as_misses():
    vectors = clustered(4000, 32, clusters=40, spread=0.12, seed=3)
    index = VectorIndex.build(
        ids=np.arange(4000), vectors=vectors, m=2, ef_construction=2, ef_search=1, num_threads=1
    )

    assert index.self_check(sample_size=500, k=10, seed=1) < 0.9


def test_recall_at_k_counts_ties_with_the_kth_exact_score_as_hits():
    exact = np.array([[0.9, 0.8, 0.7]])

    assert recall_at_k(found_scores=np.array([[0.9, 0.8, 0.7]]), exact_scores=exact) == 1.0
    assert recall_at_k(found_scores=np.array([[0.9, 0.7, 0.7]]), exact_scores=exact) == 1.0
    assert recall_at_k(found_scores=np.array([[0.9, 0.8, 0.6]]), exact_scores=exact) == 2 / 3


def test_exact_search_returns_the_true_top_k():
    vectors = unit([[1, 0], [0, 1], [1, 1], [1, -0.5], [-1, 0]])
    ids = np.array([10, 20, 30, 40, 50])

    found, scores = exact_search(vectors=vectors, ids=ids, queries=unit([[1, 0], [0.1, 1]]), k=3)

    assert found.tolist() == [[10, 40, 30], [20, 30, 10]]
    assert scores.tolist() == [
        pytest.approx([1.0, 0.8944272, SQRT_HALF]),
        pytest.approx([0.9950372, 0.7739573, 0.0995037]),
    ]


def test_exact_search_with_k_above_the_database_size_returns_everything():
    found, scores = exact_search(
        vectors=unit([[1, 0], [0, 1]]), ids=np.array([1, 2]), queries=unit([[0, 1]]), k=5
    )

    assert found.tolist() == [[2, 1]]
    assert scores.tolist() == [pytest.approx([1.0, 0.0])]


# Exact buffer and merge -------------------------------------------------------------------------

# Index: ids 1..4. Buffer: id 9 is new, id 2 was re-embedded and now points elsewhere.
MERGE_INDEX_VECTORS = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
MERGE_BUFFER_VECTORS = np.array([[1, 0.05, 0], [0, 0, -1]], dtype=np.float32)


def merge_fixture():
    index = VectorIndex.build(ids=np.array([1, 2, 3, 4]), vectors=MERGE_INDEX_VECTORS)
    buffer = ExactBuffer(ids=np.array([9, 2]), vectors=MERGE_BUFFER_VECTORS)
    return index, buffer


def test_query_with_buffer_finds_ids_only_in_the_buffer_and_prefers_the_buffer_vector():
    index, buffer = merge_fixture()

    [result] = query_with_buffer(index=index, buffer=buffer, vectors=np.array([1.0, 0, 0]), k=4)

    # id 2's indexed vector scores 0.995, but its newer buffer vector scores 0: the buffer wins.
    assert result.ids.tolist() == [1, 9, 2, 3]
    assert result.scores.tolist() == pytest.approx([1.0, 0.99875156, 0.0, 0.0], abs=1e-6)


def test_query_with_buffer_respects_exclude_and_allowed():
    index, buffer = merge_fixture()

    [excluded] = query_with_buffer(
        index=index, buffer=buffer, vectors=np.array([1.0, 0, 0]), k=2, exclude={9}
    )
    [allowed] = query_with_buffer(
        index=index,
        buffer=buffer,
        vectors=np.array([1.0, 0, 0]),
        k=2,
        allowed=lambda i: i in {2, 4, 9},
    )

    assert excluded.ids.tolist() == [1, 2]
    assert allowed.ids.tolist() == [9, 2]


def test_merge_results_orders_by_score_then_id_and_drops_superseded_index_hits():
    from_index = QueryResult(
        ids=np.array([5, 7, 6, 8]), scores=np.array([0.9, 0.8, 0.8, 0.1], dtype=np.float32)
    )
    from_buffer = QueryResult(ids=np.array([4, 3]), scores=np.array([0.8, 0.2], dtype=np.float32))

    [merged] = merge_results(
        index_results=[from_index], buffer_results=[from_buffer], buffer_ids=[3, 4, 5], k=4
    )

    assert merged.ids.tolist() == [4, 6, 7, 3]
    assert merged.scores.tolist() == pytest.approx([0.8, 0.8, 0.8, 0.2])


def test_merge_results_lets_the_buffer_win_even_if_buffer_ids_missed_an_id():
    from_index = QueryResult(ids=np.array([5]), scores=np.array([0.9], dtype=np.float32))
    from_buffer = QueryResult(ids=np.array([5]), scores=np.array([0.3], dtype=np.float32))

    [merged] = merge_results(
        index_results=[from_index], buffer_results=[from_buffer], buffer_ids=[], k=3
    )

    assert merged.pairs() == [(5, pytest.approx(0.3))]


def test_empty_buffer_changes_nothing(small):
    ids, vectors, index = small
    queries = random_unit(3, 16, seed=13)

    merged = query_with_buffer(index=index, buffer=ExactBuffer.empty(dim=16), vectors=queries, k=10)

    assert [r.pairs() for r in merged] == [r.pairs() for r in index.query(queries, k=10)]


def test_with_an_empty_buffer_ties_come_back_by_id_as_a_merge_orders_them():
    # Three products with the same vector (the same title): equal scores, ids out of order.
    index = VectorIndex.build(
        ids=np.array([7, 3, 5, 1]), vectors=unit([[1, 0], [1, 0], [1, 0], [0, 1]])
    )
    empty = ExactBuffer.empty(dim=2)
    query = np.array([1.0, 0.0])

    [alone] = query_with_buffer(index=index, buffer=empty, vectors=query, k=4)
    [merged] = merge_results(
        index_results=index.query(query, k=4),
        buffer_results=empty.query(query, k=4),
        buffer_ids=empty.ids,
        k=4,
    )
    [excluding] = query_with_buffer(index=index, buffer=empty, vectors=query, k=3, exclude={5})

    assert alone.ids.tolist() == [3, 5, 7, 1]
    assert (alone.ids.tolist(), alone.scores.tolist()) == (
        merged.ids.tolist(), merged.scores.tolist(),
    )  # fmt: skip
    assert excluding.ids.tolist() == [3, 7, 1]


# Clear errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1, 2, 3], [[1.0, 0.0], [0.0, 1.0]], "vectors has 2 rows but ids has 3 entries"),
        ([1, 2], [1.0, 0.0], "vectors must be a 2-D array (rows, dimension); got shape (2,)"),
        ([1, 2], [[1, 0], [0, 1]], "vectors must be floating point; got dtype int64"),
        ([1.5, 2.0], [[1.0, 0.0], [0.0, 1.0]], "ids must be integers; got dtype float64"),
        ([[1, 2]], [[1.0, 0.0]], "ids must be a 1-D array; got shape (1, 2)"),
        ([4, -1], [[1.0, 0.0], [0.0, 1.0]], "ids must be non-negative; got -1 at position 1"),
        (
            [5, 6, 7, 5],
            [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 2.0]],
            "duplicate id 5 at positions 0 and 3; each id must appear once",
        ),
        (
            [5, 6, 7],
            [[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]],
            "vectors row 2 (id 7) contains NaN or infinity",
        ),
        ([5, 6], [[1.0, 0.0], [np.inf, 1.0]], "vectors row 1 (id 6) contains NaN or infinity"),
        (
            [5, 6],
            [[1.0, 0.0], [0.0, 0.0]],
            "vectors row 1 (id 6) is all zeros and has no direction",
        ),
    ],
)
def test_build_and_buffer_refuse_bad_input_with_a_clear_message(ids, vectors, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        VectorIndex.build(ids=np.asarray(ids), vectors=np.asarray(vectors))
    with pytest.raises(ValueError, match=re.escape(message)):
        ExactBuffer(ids=np.asarray(ids), vectors=np.asarray(vectors))


def test_query_refuses_bad_input_with_a_clear_message():
    index = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS)

    with pytest.raises(
        ValueError, match=re.escape("query vectors have dimension 4 but the index has dimension 3")
    ):
        index.query(np.ones(4), k=1)
    with pytest.raises(ValueError, match=re.escape("query vectors row 1 contains NaN")):
        index.query(np.array([[1.0, 0, 0], [np.nan, 0, 0]]), k=1)
    with pytest.raises(ValueError, match=re.escape("k must be an integer >= 1; got 0")):
        index.query(np.ones(3), k=0)
    with pytest.raises(ValueError, match=re.escape("exclude must be a 1-D collection of integer")):
        index.query(np.ones(3), k=1, exclude=["a"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="allowed must be None, a collection of ids or a predicate"):
        index.query(np.ones(3), k=1, allowed=3)  # type: ignore[arg-type]


def test_build_refuses_bad_parameters():
    with pytest.raises(ValueError, match=re.escape("m must be an integer >= 2; got 1")):
        VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS, m=1)
    with pytest.raises(ValueError, match=re.escape("ef_search must be an integer >= 1; got 0")):
        VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS, ef_search=0)


def test_buffer_and_index_of_different_dimensions_are_refused():
    index = VectorIndex.build(ids=HAND_IDS, vectors=HAND_VECTORS)

    with pytest.raises(
        ValueError, match=re.escape("index has dimension 3 but buffer has dimension 4")
    ):
        query_with_buffer(index=index, buffer=ExactBuffer.empty(dim=4), vectors=np.ones(3), k=1)
