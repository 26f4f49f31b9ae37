"""Approximate nearest-neighbour search over product embeddings (hnswlib). Framework-free.

One cohesive class and its file format, kept whole on purpose: the only module of the apps over
600 lines (the index, its side buffer, and the manifest that makes them one artifact).

A :class:`VectorIndex` is an immutable artifact: a worker builds it from the current product
vectors and saves it; web processes load it read-only and query it. Products embedded after the
last build live in a small :class:`ExactBuffer` searched by brute force, and
:func:`query_with_buffer` merges both, so a product added between builds is still findable.

Ids are integers (product primary keys). Vectors are L2-normalised ``float32``; the space is
cosine, so every score returned here is a cosine similarity (``1 - hnswlib distance``), best
first.

What the index contains is fixed at build time. Products deactivated or deleted since then must
be passed by the caller in ``exclude`` (or left out of ``allowed``); they then never come back.

Saved layout (one writer per path; any number of readers):

- ``<path>`` is a small JSON *manifest* (dimension, count, space, M, ef_construction, and the
  name and size of the data file). Replacing it with ``os.replace`` is the single commit point.
- ``<path>.<token>.hnsw`` beside it is the hnswlib graph; ``token`` is random per save, so a save
  never writes over a file a reader may be loading.

:meth:`VectorIndex.save` writes the data file under a temporary name, checks its size (hnswlib's
writer does not report a failed write), fsyncs it, renames it, then writes the manifest the same
way and renames it over ``<path>`` (both through :mod:`recommender.ml.files`). A reader
therefore sees either the old manifest, whose data file is still there, or the new one, whose
data file is already complete: never a torn or mismatched pair. A crash before the commit leaves
the previous index in place plus temporary files that the next save of that path removes.

Thread-safety (hnswlib's rules): ``knn_query`` and ``get_items`` may run concurrently from any
number of threads on an index nobody modifies; ``add_items``, ``mark_deleted``, ``resize_index``
and ``set_ef`` may not run alongside queries. This wrapper never mutates an index after
:meth:`~VectorIndex.build` or :meth:`~VectorIndex.load` returns, so one loaded instance can be
shared by all threads of a web process. ``ef_search`` is therefore fixed per instance (hnswlib
does not persist it: :meth:`~VectorIndex.load` sets it every time). Queries default to
``num_threads=1``: in a web process concurrency comes from requests, and hnswlib would otherwise
start one OS thread per core for every batch call.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from .files import atomic_path, fsync_directory, write_bytes_atomic
from .sorted_search import in_sorted, sorted_ids

SPACE = "cosine"
# Defaults chosen with bench/ann.py (docs/benchmarks.md, "Vector index") for recall@10 >= 0.95
# with p99 single-query latency <= 2 ms at 1M x 384-dim vectors on 2 cores: measured recall@10
# 0.985 and 0.80 ms p99 of CPU per query there; ef_search 64 gave only 0.938.
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 128

MANIFEST_FORMAT = "recsite-vector-index"
MANIFEST_VERSION = 1
DATA_SUFFIX = ".hnsw"
TEMP_SUFFIX = ".tmp"

# hnswlib draws each node's level from this seed, so a single-threaded build is reproducible.
_RANDOM_SEED = 100
# Up to this many excluded ids are dropped by over-fetching (k + |exclude|) instead of a filter:
# hnswlib's filter calls back into Python for every candidate, which costs more than a few
# extra results for the small exclusion lists recommendations use (the product itself, the cart).
_OVERFETCH_EXCLUDE_MAX = 64
# An allowed set this small is searched exactly: a filtered graph walk has to visit roughly
# ef / (allowed fraction) nodes, which is slower than brute force over a few thousand vectors.
_EXACT_ALLOWED_MAX = 4096
# Brute force works in blocks of at most this many scores (64 MB of float32) to bound memory.
_EXACT_BLOCK_SCORES = 1 << 24
_FEWER_RESULTS_MESSAGE = "Cannot return the results in a contiguous 2D array"
_LOAD_ATTEMPTS = 3

Allowed = Callable[[int], bool] | Collection[int] | None


class VectorIndexFileError(ValueError):
    """A saved index that cannot be used: missing, torn, from another format or inconsistent."""


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What a saved index needs to be loaded and what it was built with."""

    dim: int
    count: int
    space: str
    m: int
    ef_construction: int


@dataclass(frozen=True, slots=True, eq=False)
class QueryResult:
    """Neighbours of one query vector: ids (int64) and cosine similarities (float32), best first."""

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def pairs(self) -> list[tuple[int, float]]:
        return list(zip(self.ids.tolist(), self.scores.tolist(), strict=True))

    @classmethod
    def empty(cls) -> QueryResult:
        return cls(ids=np.empty(0, dtype=np.int64), scores=np.empty(0, dtype=np.float32))


class VectorIndex:
    """An hnswlib graph over L2-normalised vectors keyed by integer ids; read-only once made.

    Make one with :meth:`build` or :meth:`load`, never with the constructor.
    """

    def __init__(
        self, *, index: hnswlib.Index, ids: np.ndarray, info: IndexInfo, ef_search: int
    ) -> None:
        self._index = index
        self._ids = ids  # Sorted, read-only: membership tests and exact fallbacks.
        self._info = info
        self._ef_search = ef_search

    # Construction -----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        ids: np.ndarray,
        vectors: np.ndarray,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        num_threads: int | None = None,
    ) -> VectorIndex:
        """Index ``vectors`` (one row per id; normalised here) under ``ids``.

        ``num_threads=None`` uses every core; a build with ``num_threads=1`` is reproducible.
        An empty catalogue (zero rows, any dimension >= 1) gives an index that returns nothing.
        """
        _check_positive_int("m", m, minimum=2)
        _check_positive_int("ef_construction", ef_construction)
        _check_positive_int("ef_search", ef_search)
        if num_threads is not None:
            _check_positive_int("num_threads", num_threads)
        id_array, unit_vectors = _validated_ids_and_vectors(ids=ids, vectors=vectors)
        count, dim = unit_vectors.shape
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(
            max_elements=count, M=m, ef_construction=ef_construction, random_seed=_RANDOM_SEED
        )
        if count:
            index.add_items(unit_vectors, id_array, num_threads=num_threads or -1)
        index.set_ef(ef_search)
        index.set_num_threads(1)
        info = IndexInfo(dim=dim, count=count, space=SPACE, m=m, ef_construction=ef_construction)
        return cls(index=index, ids=_frozen(np.sort(id_array)), info=info, ef_search=ef_search)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, ef_search: int = DEFAULT_EF_SEARCH
    ) -> VectorIndex:
        """Load the index saved at ``path`` (its manifest) for read-only use."""
        _check_positive_int("ef_search", ef_search)
        path = Path(path)
        for attempt in range(1, _LOAD_ATTEMPTS + 1):
            manifest = _read_manifest(path)
            info = manifest["info"]
            data_path = path.parent / manifest["data_file"]
            index = hnswlib.Index(space=info.space, dim=info.dim)
            try:
                size = data_path.stat().st_size
                if size != manifest["data_bytes"]:
                    raise VectorIndexFileError(
                        f"{data_path}: data file has {size} bytes but the manifest {path} "
                        f"records {manifest['data_bytes']}; the file is torn or was replaced"
                    )
                index.load_index(str(data_path))
            except (FileNotFoundError, RuntimeError) as error:
                # A concurrent save of the same path may have committed a new manifest and removed
                # this data file between our two reads: read the manifest again.
                if attempt < _LOAD_ATTEMPTS and not data_path.exists():
                    continue
                raise VectorIndexFileError(
                    f"{data_path}: cannot load the data file named by {path}: {error}"
                ) from error
            break
        _check_loaded(index=index, info=info, path=path)
        index.set_ef(ef_search)
        index.set_num_threads(1)
        ids = np.asarray(index.get_ids_list(), dtype=np.int64)
        return cls(index=index, ids=_frozen(np.sort(ids)), info=info, ef_search=ef_search)

    # Persistence ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index atomically to ``path`` (a manifest) and a data file beside it.

        Returns ``path``. The previous index at ``path``, if any, stays loadable until the new
        manifest is committed; its data file is removed afterwards.
        """
        path = Path(path)
        directory = path.parent
        if not directory.is_dir():
            raise FileNotFoundError(f"index directory {directory} does not exist")
        token = secrets.token_hex(8)
        data_name = f"{path.name}.{token}{DATA_SUFFIX}"
        data_path = directory / data_name
        data_temp = directory / f".{data_name}{TEMP_SUFFIX}"
        manifest_temp = directory / f".{path.name}.{token}.manifest{TEMP_SUFFIX}"
        committed = False
        try:
            with atomic_path(data_path, temp=data_temp) as temp:
                self._index.save_index(str(temp))
                expected = self._index.index_file_size()
                written = temp.stat().st_size if temp.exists() else 0
                if written != expected:
                    # hnswlib writes through an unchecked std::ofstream: a full disk or a
                    # file-size limit gives a short file, not an exception.
                    raise OSError(f"{temp}: wrote {written} of {expected} bytes of the index")
            manifest = _manifest_dict(info=self.info, data_file=data_name, data_bytes=expected)
            content = json.dumps(manifest, indent=2).encode() + b"\n"
            # The commit point. The directory is synced after recording it: from the rename
            # on, the data file belongs to the new manifest and must stay.
            write_bytes_atomic(path, content, temp=manifest_temp, sync_directory=False)
            committed = True
            fsync_directory(directory)
        finally:
            if not committed:
                data_path.unlink(missing_ok=True)
        _remove_superseded(path=path, keep=data_name)
        return path

    @staticmethod
    def delete_saved(path: str | os.PathLike[str]) -> None:
        """Remove a saved index: its manifest, data files and leftovers of crashed saves."""
        path = Path(path)
        path.unlink(missing_ok=True)
        _remove_superseded(path=path, keep=None)

    # Queries ----------------------------------------------------------------------------------

    @property
    def info(self) -> IndexInfo:
        return self._info

    @property
    def ef_search(self) -> int:
        """Fixed per instance: changing it under concurrent queries is not safe in hnswlib."""
        return self._ef_search

    @property
    def dim(self) -> int:
        return self._info.dim

    @property
    def ids(self) -> np.ndarray:
        """Every indexed id, sorted ascending (read-only)."""
        return self._ids

    def __len__(self) -> int:
        return self.info.count

    def __contains__(self, product_id: object) -> bool:
        if not isinstance(product_id, int | np.integer):
            return False
        position = int(np.searchsorted(self._ids, product_id))
        return position < len(self._ids) and int(self._ids[position]) == product_id

    def query(
        self,
        vectors: np.ndarray,
        *,
        k: int,
        allowed: Allowed = None,
        exclude: Collection[int] = (),
        num_threads: int = 1,
    ) -> list[QueryResult]:
        """The ``k`` nearest indexed ids of each query vector, best first.

        ``vectors`` is one vector or a 2-D batch; the result has one entry per row. An id in
        ``exclude``, or not accepted by ``allowed`` (a set of ids or a predicate), never comes
        back. Each result holds ``k`` ids whenever at least ``k`` indexed ids are permitted:
        hnswlib's filtered search keeps walking the graph until it has ``ef`` permitted
        candidates, and if it still comes up short (an unreachable node, a very selective
        predicate) the query is answered by exact search instead.

        Pass a selective restriction as a set (up to 4,096 permitted ids are searched exactly,
        fast) and a broad one as a predicate or an ``exclude`` list: a predicate that permits
        almost nothing makes hnswlib walk the whole graph before the exact fallback.
        """
        _check_positive_int("k", k)
        _check_positive_int("num_threads", num_threads)
        queries = _validated_queries(vectors, dim=self.dim)
        excluded = _id_set(exclude, name="exclude")
        if not len(queries) or not self.info.count:
            return [QueryResult.empty() for _ in range(len(queries))]
        if allowed is None:
            return self._query_excluding(queries, k=k, excluded=excluded, num_threads=num_threads)
        if isinstance(allowed, Collection):
            candidates = _id_array(allowed, name="allowed")
            candidates = candidates[in_sorted(self._ids, candidates)]
            if excluded:
                candidates = candidates[~in_sorted(sorted_ids(excluded), candidates)]
            if len(candidates) <= _EXACT_ALLOWED_MAX:
                return self._exact(queries, ids=candidates, k=k)
            permitted = set(candidates.tolist())
            return self._knn(
                queries,
                k=min(k, len(candidates)),
                predicate=permitted.__contains__,
                num_threads=num_threads,
                fallback=lambda: candidates,
            )
        if not callable(allowed):
            raise TypeError(
                f"allowed must be None, a collection of ids or a predicate; got {type(allowed)!r}"
            )
        predicate = _allowed_and_not_excluded(allowed, excluded)
        available = self.info.count - self._count_indexed(sorted_ids(excluded))
        return self._knn(
            queries,
            k=min(k, available),
            predicate=predicate,
            num_threads=num_threads,
            fallback=lambda: np.fromiter(
                (i for i in self._ids.tolist() if predicate(i)), dtype=np.int64
            ),
        )

    def vectors_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored (normalised) vectors of indexed ``ids``, one row each."""
        id_array = _id_array(ids, name="ids", unique=False)
        missing = id_array[~in_sorted(self._ids, id_array)]
        if len(missing):
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        if not len(id_array):
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.get_items(id_array), dtype=np.float32)

    def self_check(self, *, sample_size: int = 1000, k: int = 10, seed: int = 0) -> float:
        """recall@k of the index against exact search, with a sample of indexed vectors as queries.

        Tie-aware (as in ann-benchmarks): a returned id counts as a hit when its similarity is
        within 1e-5 of the k-th exact similarity, so duplicate vectors (the same title on two
        products) do not count as misses. This measures the graph alone: a query for which the
        graph cannot return k ids (a disconnected graph) scores 0, where :meth:`query` would
        have fallen back to exact search. An empty index scores 1.0.
        """
        _check_positive_int("sample_size", sample_size)
        _check_positive_int("k", k)
        if not self.info.count:
            return 1.0
        rng = np.random.default_rng(seed)
        sample = rng.choice(self._ids, size=min(sample_size, self.info.count), replace=False)
        queries = self.vectors_of(sample)
        k = min(k, self.info.count)
        found_ids = self._knn_without_fallback(queries, k=k)
        # Recompute the similarities of what came back rather than trusting the index's own.
        found_vectors = self.vectors_of(np.maximum(found_ids, self._ids[0]).ravel())
        found_scores = np.einsum(
            "qkd,qd->qk", found_vectors.reshape(*found_ids.shape, self.dim), queries
        )
        found_scores[found_ids < 0] = -np.inf  # Not returned: a miss.
        _, exact_scores = self._exact_arrays(queries, ids=self._ids, k=k)
        return recall_at_k(found_scores=found_scores, exact_scores=exact_scores)

    # Internals --------------------------------------------------------------------------------

    def _count_indexed(self, sorted_ids: np.ndarray) -> int:
        """How many of the ascending ``sorted_ids`` the index holds."""
        return int(in_sorted(self._ids, sorted_ids).sum())

    def _query_excluding(
        self, queries: np.ndarray, *, k: int, excluded: set[int], num_threads: int
    ) -> list[QueryResult]:
        excluded_sorted = sorted_ids(excluded)
        excluded_here = self._count_indexed(excluded_sorted)
        k = min(k, self.info.count - excluded_here)
        if k <= 0:
            return [QueryResult.empty() for _ in range(len(queries))]
        if excluded_here > _OVERFETCH_EXCLUDE_MAX:
            return self._knn(
                queries,
                k=k,
                predicate=lambda i: i not in excluded,
                num_threads=num_threads,
                fallback=lambda: self._ids[~in_sorted(excluded_sorted, self._ids)],
            )
        fetched = self._knn(
            queries,
            k=k + excluded_here,
            predicate=None,
            num_threads=num_threads,
            fallback=lambda: self._ids,
        )
        if not excluded_here:
            return fetched
        kept = []
        for result in fetched:
            mask = ~in_sorted(excluded_sorted, result.ids)
            kept.append(QueryResult(ids=result.ids[mask][:k], scores=result.scores[mask][:k]))
        return kept

    def _knn_without_fallback(self, queries: np.ndarray, *, k: int) -> np.ndarray:
        """Ids found by the graph alone, shape (queries, k); -1 fills a query it cannot answer."""
        threads = os.cpu_count() or 1
        try:
            labels, _ = self._index.knn_query(queries, k=k, num_threads=threads)
            return labels.astype(np.int64)
        except RuntimeError as error:
            if _FEWER_RESULTS_MESSAGE not in str(error):
                raise
        found = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            try:
                found[row] = self._index.knn_query(query, k=k, num_threads=1)[0][0]
            except RuntimeError as error:
                if _FEWER_RESULTS_MESSAGE not in str(error):
                    raise
        return found

    def _knn(
        self,
        queries: np.ndarray,
        *,
        k: int,
        predicate: Callable[[int], bool] | None,
        num_threads: int,
        fallback: Callable[[], np.ndarray],
    ) -> list[QueryResult]:
        if k <= 0:
            return [QueryResult.empty() for _ in range(len(queries))]
        try:
            labels, distances = self._index.knn_query(
                queries, k=k, num_threads=num_threads, filter=predicate
            )
        except RuntimeError as error:
            if _FEWER_RESULTS_MESSAGE not in str(error):
                raise
            # Fewer than k permitted ids were reachable in the graph: answer exactly instead.
            return self._exact(queries, ids=fallback(), k=k)
        ids = labels.astype(np.int64)
        scores = (1.0 - distances).astype(np.float32)
        return [QueryResult(ids=ids[row], scores=scores[row]) for row in range(len(queries))]

    def _exact(self, queries: np.ndarray, *, ids: np.ndarray, k: int) -> list[QueryResult]:
        found_ids, found_scores = self._exact_arrays(queries, ids=ids, k=k)
        return [
            QueryResult(ids=found_ids[row], scores=found_scores[row]) for row in range(len(queries))
        ]

    def _exact_arrays(
        self, queries: np.ndarray, *, ids: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over indexed ``ids``, fetching their vectors block by block."""
        block = max(1, _EXACT_BLOCK_SCORES // max(1, len(queries)))
        best_ids = np.empty((len(queries), 0), dtype=np.int64)
        best_scores = np.empty((len(queries), 0), dtype=np.float32)
        for start in range(0, len(ids), block):
            block_ids = ids[start : start + block]
            block_ids_found, block_scores = exact_search(
                vectors=self.vectors_of(block_ids), ids=block_ids, queries=queries, k=k
            )
            best_ids, best_scores = _merge_top_k(
                np.hstack([best_ids, block_ids_found]),
                np.hstack([best_scores, block_scores]),
                k=k,
            )
        return best_ids, best_scores


class ExactBuffer:
    """Vectors embedded after the last index build, searched exactly (brute force).

    Small by design: it holds only what changed since the last build, so a matrix product is
    both exact and fast. An id here supersedes the same id in the index (its vector is newer).
    """

    def __init__(self, *, ids: np.ndarray, vectors: np.ndarray) -> None:
        id_array, unit_vectors = _validated_ids_and_vectors(ids=ids, vectors=vectors)
        self._ids = _frozen(id_array)
        self._vectors = _frozen(unit_vectors)

    @classmethod
    def empty(cls, *, dim: int) -> ExactBuffer:
        _check_positive_int("dim", dim)
        return cls(ids=np.empty(0, dtype=np.int64), vectors=np.empty((0, dim), dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def query(
        self,
        vectors: np.ndarray,
        *,
        k: int,
        allowed: Allowed = None,
        exclude: Collection[int] = (),
    ) -> list[QueryResult]:
        """Exact counterpart of :meth:`VectorIndex.query` over the buffer's vectors."""
        _check_positive_int("k", k)
        queries = _validated_queries(vectors, dim=self.dim)
        excluded = _id_set(exclude, name="exclude")
        mask = np.ones(len(self._ids), dtype=bool)
        if excluded:
            mask &= ~np.isin(self._ids, list(excluded))
        if allowed is not None:
            if isinstance(allowed, Collection):
                mask &= np.isin(self._ids, _id_array(allowed, name="allowed"))
            elif callable(allowed):
                mask &= np.fromiter(
                    (bool(allowed(i)) for i in self._ids.tolist()), dtype=bool, count=len(mask)
                )
            else:
                raise TypeError(
                    "allowed must be None, a collection of ids or a predicate; "
                    f"got {type(allowed)!r}"
                )
        found_ids, found_scores = exact_search(
            vectors=self._vectors[mask], ids=self._ids[mask], queries=queries, k=k
        )
        return [
            QueryResult(ids=found_ids[row], scores=found_scores[row]) for row in range(len(queries))
        ]


def merge_results(
    *,
    index_results: Sequence[QueryResult],
    buffer_results: Sequence[QueryResult],
    buffer_ids: Collection[int] | np.ndarray,
    k: int,
) -> list[QueryResult]:
    """Merge per-query results of the index and of the buffer: best ``k`` by score.

    An id held by the buffer is dropped from the index results even when the buffer did not
    return it for this query: the buffer's vector is newer, so the index's score is stale. Ties
    are broken by ascending id, so the order is fully determined.
    """
    _check_positive_int("k", k)
    if len(index_results) != len(buffer_results):
        raise ValueError(
            f"index_results has {len(index_results)} queries but buffer_results has "
            f"{len(buffer_results)}"
        )
    superseded = _id_array(buffer_ids, name="buffer_ids", unique=False)
    merged = []
    for from_index, from_buffer in zip(index_results, buffer_results, strict=True):
        fresh = ~np.isin(from_index.ids, superseded)
        # Buffer first: np.unique keeps the first occurrence, so if a caller's buffer_ids missed
        # an id both sides returned, the newer (buffer) score still wins.
        ids = np.concatenate([from_buffer.ids, from_index.ids[fresh]]).astype(np.int64)
        scores = np.concatenate([from_buffer.scores, from_index.scores[fresh]]).astype(np.float32)
        ids, first = np.unique(ids, return_index=True)
        merged.append(_best_first(ids, scores[first], k=k))
    return merged


def _best_first(ids: np.ndarray, scores: np.ndarray, *, k: int) -> QueryResult:
    """The ``k`` best of distinct ``ids`` by score, ties by ascending id."""
    ids, scores = ids.astype(np.int64), scores.astype(np.float32)
    order = np.lexsort((ids, -scores))[:k]
    return QueryResult(ids=ids[order], scores=scores[order])


def query_with_buffer(
    *,
    index: VectorIndex,
    buffer: ExactBuffer,
    vectors: np.ndarray,
    k: int,
    allowed: Allowed = None,
    exclude: Collection[int] = (),
    num_threads: int = 1,
) -> list[QueryResult]:
    """Query the index and the buffer together; the buffer's vector wins for ids in both."""
    if index.dim != buffer.dim:
        raise ValueError(f"index has dimension {index.dim} but buffer has dimension {buffer.dim}")
    excluded = _id_set(exclude, name="exclude")
    if not len(buffer.ids):
        # Nothing embedded since the build (the usual case): the index's answers alone, in the
        # order a merge gives them (best first, ties by ascending id). The index checks ``k``.
        found = index.query(
            vectors, k=k, allowed=allowed, exclude=excluded, num_threads=num_threads
        )
        return [_best_first(result.ids, result.scores, k=k) for result in found]
    index_results = index.query(
        vectors,
        k=k,
        allowed=allowed,
        exclude=excluded | set(buffer.ids.tolist()),
        num_threads=num_threads,
    )
    buffer_results = buffer.query(vectors, k=k, allowed=allowed, exclude=excluded)
    return merge_results(
        index_results=index_results, buffer_results=buffer_results, buffer_ids=buffer.ids, k=k
    )


def exact_search(
    *, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` by inner product: the baseline every approximate result is judged by.

    Inputs are taken as given (L2-normalised, so inner product is cosine similarity). Returns
    ``(ids, scores)``, each of shape ``(len(queries), min(k, len(ids)))``, best first (which of
    several equal scores at the k-th place is kept is unspecified: recall is measured tie-aware).
    The database is processed in blocks to bound memory.
    """
    _check_positive_int("k", k)
    k = min(k, len(ids))
    queries = np.atleast_2d(queries)
    if not k:
        return (
            np.empty((len(queries), 0), dtype=np.int64),
            np.empty((len(queries), 0), dtype=np.float32),
        )
    ids = np.asarray(ids, dtype=np.int64)
    block = max(k, _EXACT_BLOCK_SCORES // max(1, len(queries)))
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    for start in range(0, len(ids), block):
        scores = queries @ vectors[start : start + block].T
        block_k = min(k, scores.shape[1])
        top = np.argpartition(-scores, block_k - 1, axis=1)[:, :block_k]
        best_ids, best_scores = _merge_top_k(
            np.hstack([best_ids, ids[start + top]]),
            np.hstack([best_scores, np.take_along_axis(scores, top, axis=1)]),
            k=k,
        )
    return best_ids, best_scores.astype(np.float32)


def recall_at_k(
    *, found_scores: np.ndarray, exact_scores: np.ndarray, tolerance: float = 1e-5
) -> float:
    """Tie-aware recall: the share of returned items at least as similar as the k-th exact one.

    ``found_scores`` are the true similarities of the returned ids (recomputed from vectors),
    ``exact_scores`` the exact top-k, both of shape ``(queries, k)``.
    """
    if found_scores.shape != exact_scores.shape:
        raise ValueError(
            f"found_scores has shape {found_scores.shape} but exact_scores has shape "
            f"{exact_scores.shape}"
        )
    if not found_scores.size:
        return 1.0
    threshold = exact_scores[:, -1:] - tolerance
    return float((found_scores >= threshold).mean())


# Helpers ------------------------------------------------------------------------------------


def _merge_top_k(ids: np.ndarray, scores: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the best ``k`` columns of each row, sorted best first."""
    k = min(k, scores.shape[1])
    if scores.shape[1] > k:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        ids = np.take_along_axis(ids, top, axis=1)
        scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _check_positive_int(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _id_array(ids: Collection[int] | np.ndarray, *, name: str, unique: bool = True) -> np.ndarray:
    array = np.asarray(list(ids) if isinstance(ids, set | frozenset) else ids)
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D collection of integer ids; got {array.dtype}")
    array = array.astype(np.int64)
    return np.unique(array) if unique else array


def _id_set(ids: Collection[int], *, name: str) -> set[int]:
    if isinstance(ids, set | frozenset) and all(type(i) is int for i in ids):
        return set(ids)
    return set(_id_array(ids, name=name).tolist())


def _allowed_and_not_excluded(
    allowed: Callable[[int], bool], excluded: set[int]
) -> Callable[[int], bool]:
    if not excluded:
        return lambda i: bool(allowed(i))
    return lambda i: i not in excluded and bool(allowed(i))


def _validated_ids_and_vectors(
    *, ids: np.ndarray, vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Check ids and vectors row by row and return (int64 ids, normalised float32 vectors)."""
    id_array = np.asarray(ids)
    if id_array.ndim != 1:
        raise ValueError(f"ids must be a 1-D array; got shape {id_array.shape}")
    if id_array.size and not np.issubdtype(id_array.dtype, np.integer):
        raise ValueError(f"ids must be integers; got dtype {id_array.dtype}")
    id_array = id_array.astype(np.int64)
    raw = np.asarray(vectors)
    if raw.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (rows, dimension); got shape {raw.shape}")
    if raw.shape[1] < 1:
        raise ValueError("vectors must have a dimension of at least 1; got 0")
    if raw.size and not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(f"vectors must be floating point; got dtype {raw.dtype}")
    if len(raw) != len(id_array):
        raise ValueError(f"vectors has {len(raw)} rows but ids has {len(id_array)} entries")
    negative = np.flatnonzero(id_array < 0)
    if len(negative):
        raise ValueError(
            f"ids must be non-negative; got {id_array[negative[0]]} at position {negative[0]}"
        )
    order = np.argsort(id_array, kind="stable")
    repeats = np.flatnonzero(id_array[order][1:] == id_array[order][:-1])
    if len(repeats):
        first, second = sorted((order[repeats[0]], order[repeats[0] + 1]))
        raise ValueError(
            f"duplicate id {id_array[first]} at positions {first} and {second}; "
            "each id must appear once"
        )
    unit = _normalised(raw.astype(np.float32), labels=id_array, what="vectors")
    return id_array, unit


def _validated_queries(vectors: np.ndarray, *, dim: int) -> np.ndarray:
    raw = np.asarray(vectors)
    if raw.ndim == 1:
        raw = raw[np.newaxis, :]
    if raw.ndim != 2:
        raise ValueError(f"query vectors must be 1-D or 2-D; got shape {raw.shape}")
    if raw.shape[1] != dim:
        raise ValueError(
            f"query vectors have dimension {raw.shape[1]} but the index has dimension {dim}"
        )
    if raw.size and not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(f"query vectors must be floating point; got dtype {raw.dtype}")
    return _normalised(raw.astype(np.float32), labels=None, what="query vectors")


def _normalised(array: np.ndarray, *, labels: np.ndarray | None, what: str) -> np.ndarray:
    def where(row: int) -> str:
        return f"row {row}" + ("" if labels is None else f" (id {labels[row]})")

    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{what} {where(row)} contains NaN or infinity")
    norms = np.linalg.norm(array, axis=1)
    if len(norms) and not (norms > 0).all():
        row = int(np.flatnonzero(norms <= 0)[0])
        raise ValueError(f"{what} {where(row)} is all zeros and has no direction")
    return np.ascontiguousarray(array / norms[:, np.newaxis], dtype=np.float32)


def _manifest_dict(*, info: IndexInfo, data_file: str, data_bytes: int) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "data_file": data_file,
        "data_bytes": data_bytes,
        "dim": info.dim,
        "count": info.count,
        "space": info.space,
        "m": info.m,
        "ef_construction": info.ef_construction,
        "hnswlib": metadata.version("hnswlib"),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise VectorIndexFileError(f"{path}: not a readable index manifest: {error}") from error
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
        raise VectorIndexFileError(f"{path}: not a {MANIFEST_FORMAT} manifest")
    if raw.get("version") != MANIFEST_VERSION:
        raise VectorIndexFileError(
            f"{path}: manifest version {raw.get('version')!r} is not supported "
            f"(expected {MANIFEST_VERSION})"
        )
    for field in ("dim", "count", "m", "ef_construction", "data_bytes"):
        if isinstance(raw.get(field), bool) or not isinstance(raw.get(field), int):
            raise VectorIndexFileError(f"{path}: manifest field {field!r} must be an integer")
    data_file = raw.get("data_file")
    if not isinstance(data_file, str) or not _data_file_pattern(path.name).fullmatch(data_file):
        raise VectorIndexFileError(f"{path}: manifest field 'data_file' is missing or invalid")
    if raw.get("space") != SPACE:
        raise VectorIndexFileError(f"{path}: space {raw.get('space')!r} is not {SPACE!r}")
    info = IndexInfo(
        dim=raw["dim"],
        count=raw["count"],
        space=raw["space"],
        m=raw["m"],
        ef_construction=raw["ef_construction"],
    )
    return {"info": info, "data_file": data_file, "data_bytes": raw["data_bytes"]}


def _check_loaded(*, index: hnswlib.Index, info: IndexInfo, path: Path) -> None:
    loaded = {
        "count": index.get_current_count(),
        "m": index.M,
        "ef_construction": index.ef_construction,
    }
    expected = {"count": info.count, "m": info.m, "ef_construction": info.ef_construction}
    for field, value in loaded.items():
        if value != expected[field]:
            raise VectorIndexFileError(
                f"{path}: the data file has {field}={value} but the manifest says {expected[field]}"
            )


def _data_file_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(name) + r"\.[0-9a-f]{16}" + re.escape(DATA_SUFFIX))


def _remove_superseded(*, path: Path, keep: str | None) -> None:
    """Remove this path's data files other than ``keep`` and temporary files of crashed saves."""
    data_pattern = _data_file_pattern(path.name)
    temp_pattern = re.compile(
        r"\." + re.escape(path.name) + r"\.[0-9a-f]{16}(" + re.escape(DATA_SUFFIX)
        + r"|\.manifest)" + re.escape(TEMP_SUFFIX)
    )  # fmt: skip
    for entry in path.parent.iterdir():
        if entry.name == keep:
            continue
        if data_pattern.fullmatch(entry.name) or temp_pattern.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
