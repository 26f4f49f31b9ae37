"""Item-to-item neighbour lists: the bounded form of every collaborative signal. Framework-free.

A :class:`Neighbours` holds, for each product, its best other products with a weight (a sparse
item x item matrix in CSR arrays, at most ``k`` entries a row). Every collaborative model of the
engine is stored this way, so a request reads only the rows of the products in its history:
the cost of a list depends on the history and ``k``, never on the catalogue.

Fitting (memory bounded; :func:`fit_memory_bytes` estimates the peak before anything big is
allocated):

- :func:`item_knn`: cosine similarity of the products' columns of the user x item matrix, the
  ``k`` nearest per product, computed by the ``implicit`` library's ``all_pairs_knn`` (C++,
  multi-threaded, one row of the product at a time: O(items x k) memory, never the full item x
  item product), or a block of products at a time where that is as fast (:func:`_all_pairs`).
- :func:`cooccurrence`: baskets shared by two products, as a cosine with a shrink term
  (``c_ij / sqrt((b_i + s)(b_j + s))``), computed the same way on the basket incidence matrix.
- :func:`ease`: Steck's EASE (WWW 2019) solved exactly in float32 and in place (one dense
  items x items matrix, Cholesky factorisation and inversion by LAPACK), then each row pruned to
  its ``k`` largest weights by magnitude. Measured on the validation and test splits of Online
  Retail and Amazon Office (``bench/collaborative.py``), pruning to 50-500 weights a row moves
  the hybrid's NDCG@10 by -1.4% to +0.6% against the dense scores (docs/scale.md), so the pruned
  model serves with bounded cost. Only catalogues whose dense matrix fits the budget use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .sorted_search import rows_in_sorted

# Rows of the dense EASE matrix processed at a time when building the Gram matrix and pruning.
_BLOCK_ROWS = 1024
# Entries of the sparse product (before merging duplicates) computed at a time by the blocked
# neighbour fit: about 70 bytes each while a block is pruned, so a block holds 0.5 GB at most.
_BLOCK_ENTRIES = 8_000_000


@dataclass(frozen=True)
class Neighbours:
    """Sparse rows: product ``i``'s neighbours are ``indices[indptr[i]:indptr[i + 1]]`` with
    weights ``data[...]`` (float32). Read-only once built; the arrays may be memory-mapped."""

    indptr: np.ndarray  # int64, n + 1
    indices: np.ndarray  # int32
    data: np.ndarray  # float32

    @classmethod
    def empty(cls, n: int) -> Neighbours:
        return cls(
            indptr=np.zeros(n + 1, dtype=np.int64),
            indices=np.empty(0, dtype=np.int32),
            data=np.empty(0, dtype=np.float32),
        )

    @classmethod
    def from_csr(cls, matrix: sp.spmatrix | sp.sparray) -> Neighbours:
        csr = sp.csr_matrix(matrix)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        return cls(  # No copies where the types already match: the lists can be large.
            indptr=csr.indptr.astype(np.int64, copy=False),
            indices=csr.indices.astype(np.int32, copy=False),
            data=csr.data.astype(np.float32, copy=False),
        )

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.data.nbytes)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.indices[start:end], self.data[start:end]

    def gather(
        self, rows: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every neighbour entry of ``rows``: ``(columns, weight x value, source row)``.

        One entry per (row, neighbour), so its size is at most ``len(rows) x k``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            empty_i = np.empty(0, dtype=np.int64)
            return empty_i, np.empty(0, dtype=np.float64), empty_i
        before = np.cumsum(lengths) - lengths
        positions = np.arange(total, dtype=np.int64) + np.repeat(starts - before, lengths)
        values = self.data[positions].astype(np.float64) * np.repeat(
            np.asarray(weights, dtype=np.float64), lengths
        )
        return self.indices[positions].astype(np.int64), values, np.repeat(rows, lengths)

    def accumulate(self, rows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``sum_i weights_i x row_i`` as ``(columns ascending, sums)``: the scores of the
        products reachable from ``rows`` (all others score 0)."""
        cols, values, _ = self.gather(rows, weights)
        return sum_by_column(cols, values, n_columns=self.n)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_indptr": self.indptr,
            f"{prefix}_indices": self.indices,
            f"{prefix}_data": self.data,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Neighbours:
        return cls(
            indptr=arrays[f"{prefix}_indptr"],
            indices=arrays[f"{prefix}_indices"],
            data=arrays[f"{prefix}_data"],
        )


# A dense accumulator over ``n`` columns costs O(n + entries), sorting the entries
# O(entries log entries). Dense is used only while the columns are at most this many times the
# entries, so its cost stays a multiple of the entries a request gathered (its own work) however
# large the catalogue; a history reaching 60,000 entries of a 4,000-product catalogue sums them
# in 0.1 ms instead of 1 ms.
DENSE_SUM_FACTOR = 8


def sum_by_column(
    cols: np.ndarray, values: np.ndarray, *, n_columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(columns ascending, summed values)`` of entries ``(cols, values)`` with columns below
    ``n_columns``. Each column's values are added in the order given whichever way is taken,
    so the sums are the same floats."""
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if not len(cols):
        return cols, values
    if n_columns <= DENSE_SUM_FACTOR * len(cols):
        present = np.zeros(n_columns, dtype=bool)
        present[cols] = True
        unique = np.flatnonzero(present)
        return unique, np.bincount(cols, weights=values, minlength=n_columns)[unique]
    unique, inverse = np.unique(cols, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique))


def lookup(cols: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Values of ``wanted`` columns in the sorted ``cols`` (0 where absent)."""
    wanted = np.asarray(wanted, dtype=np.int64)
    out = np.zeros(len(wanted), dtype=np.float64)
    if not len(cols) or not len(wanted):
        return out
    at = rows_in_sorted(cols, wanted)
    hit = at >= 0
    out[hit] = values[at[hit]]
    return out


# Fitting ---------------------------------------------------------------------------------------


def _all_pairs(
    matrix: sp.csr_matrix, *, k: int, threads: int, block_entries: int = _BLOCK_ENTRIES
) -> sp.csr_matrix:
    """Top ``k`` of each row of ``matrix.T @ matrix`` (columns as products), diagonal removed.

    Two ways, chosen by the work each needs (``bench/neighbours.py`` measures both):

    - ``implicit``'s ``all_pairs_knn`` (C++, all cores, one dense accumulator a thread) when the
      product has many entries to merge, as item-kNN on customers' histories does: 5-6x faster
      than numpy there, but it allocates ``products x (k + 1)`` triples of float64 and int64
      whatever the data (2.4 GB for a million products at k = 100);
    - blocks of products through scipy's sparse product, each block pruned to its ``k`` best
      before the next, when the entries before merging are fewer than those triples, as
      co-occurrence on baskets of two or three products is: as fast, and the memory is the
      result (8 bytes an entry) plus one bounded block (``block_entries``): 0.15x the peak.
    """
    n = matrix.shape[1]
    x = sp.csr_matrix(matrix, dtype=np.float64)
    if x.nnz == 0 or n == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    bound = merge_bound(x)
    if not prefers_blocks(bound, k):
        del bound
        return _all_pairs_implicit(x, k=k, threads=threads)
    xt = x.T.tocsr()  # Products x customers: the rows of a block.
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    start = 0
    for end in _block_ends(bound, block_entries):
        rows, cols, values = _top_of_block(xt[start:end] @ x, offset=start, k=k)
        indptr[start + 1 : end + 1] = np.bincount(rows - start, minlength=end - start)
        indices.append(cols)
        data.append(values)
        start = end
    np.cumsum(indptr, out=indptr)
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), indptr), shape=(n, n), copy=False
    )


def merge_bound(x: sp.csr_matrix) -> np.ndarray:
    """An upper bound of each product's row of ``x.T @ x`` before merging: the events of the
    customers (rows of ``x``) who touched it, at most the number of products."""
    lengths = np.diff(x.indptr)
    weights = np.repeat(lengths, lengths).astype(np.float64)
    return np.minimum(np.bincount(x.indices, weights=weights, minlength=x.shape[1]), x.shape[1])


def prefers_blocks(bound: np.ndarray, k: int) -> bool:
    """Blocks when their entries before merging are fewer than implicit's fixed triples."""
    return float(bound.sum()) <= len(bound) * (k + 1)


def _all_pairs_implicit(x: sp.csr_matrix, *, k: int, threads: int) -> sp.csr_matrix:
    from implicit.nearest_neighbours import all_pairs_knn  # C++; imported only to fit

    n = x.shape[1]
    # The product itself is usually its own best match: ask for one more and drop it.
    coo = sp.coo_matrix(all_pairs_knn(x, k + 1, num_threads=threads, show_progress=False))
    # implicit's triples are int64, int64 and float64 (24 bytes an entry, products x (k + 1)
    # whatever the data): keep what stays as int32 and float32, and let the triples go before
    # the CSR matrix is built, which copies its input. Holding both set a million-product
    # fit's peak (bench/fit_memory.py).
    keep = (coo.row != coo.col) & (coo.data > 0)
    rows, cols = coo.row[keep].astype(np.int32), coo.col[keep].astype(np.int32)
    values = coo.data[keep].astype(np.float32)
    del coo, keep
    pruned = sp.csr_matrix((values, (rows, cols)), shape=(n, n))
    del rows, cols, values
    return _keep_top(pruned, k)


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """At most ``k`` entries a row (the rows that kept ``k + 1`` lose their smallest)."""
    lengths = np.diff(matrix.indptr)
    if not len(lengths) or lengths.max() <= k:
        return matrix
    rows = np.flatnonzero(lengths > k)
    keep = np.ones(matrix.nnz, dtype=bool)
    for r in rows:  # Only rows where the product was not among its own best: few.
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        smallest = start + np.argsort(matrix.data[start:end], kind="stable")[: end - start - k]
        keep[smallest] = False
    coo = matrix.tocoo()
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)


def _block_ends(bound: np.ndarray, block_entries: int) -> list[int]:
    """Row ranges whose bounds sum to about ``block_entries`` (a bigger row gets its own)."""
    cumulative = np.cumsum(bound)
    ends: list[int] = []
    start, n = 0, len(bound)
    while start < n:
        base = cumulative[start - 1] if start else 0.0
        end = int(np.searchsorted(cumulative, base + block_entries, side="right"))
        end = min(max(end, start + 1), n)
        ends.append(end)
        start = end
    return ends


def _top_of_block(
    block: sp.csr_matrix, *, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest positive entries of each row of ``block`` (rows ``offset`` onwards of
    the full product), its own product excluded: ``(rows, columns, values)`` grouped by row."""
    block = sp.csr_matrix(block)
    block.sum_duplicates()  # Canonical: sorted columns, so a stable sort keeps the lower one.
    rows = np.repeat(np.arange(offset, offset + block.shape[0], dtype=np.int64),
                     np.diff(block.indptr))  # fmt: skip
    keep = (block.indices != rows) & (block.data > 0)
    rows, cols, values = rows[keep], block.indices[keep], block.data[keep]
    del block, keep
    counts = np.bincount(rows - offset)
    if not len(counts) or counts.max() <= k:
        return rows, cols.astype(np.int32), values.astype(np.float32)
    order = np.lexsort((-values, rows))  # By row, then best first; ties in column order.
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    order = order[np.arange(len(order)) - starts < k]
    order.sort()  # Back to column order within each row.
    return rows[order], cols[order].astype(np.int32), values[order].astype(np.float32)


def item_knn(matrix: sp.spmatrix, *, k: int, threads: int = 0) -> Neighbours:
    """The ``k`` most cosine-similar products of each product (columns of ``matrix``, a user x
    item matrix of behaviour weights)."""
    return Neighbours.from_csr(_all_pairs(_unit_columns(matrix), k=k, threads=threads))


def cooccurrence(incidence: sp.spmatrix, *, k: int, shrink: float, threads: int = 0) -> Neighbours:
    """Products sharing baskets: ``c_ij / sqrt((b_i + shrink)(b_j + shrink))``, top ``k`` a row.

    ``incidence`` is baskets x items (any positive value counts as "in the basket"); ``c_ij``
    counts baskets holding both products and ``b_i`` those holding ``i``. The shrink term keeps
    a product found in every basket from going with everything.
    """
    return Neighbours.from_csr(_all_pairs(_basket_scaled(incidence, shrink), k=k, threads=threads))


def _unit_columns(matrix: sp.spmatrix) -> sp.csr_matrix:
    """``matrix`` with every column scaled to unit length (cosines as dot products)."""
    x = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(x @ sp.diags(scale))


def _basket_scaled(incidence: sp.spmatrix, shrink: float) -> sp.csr_matrix:
    """Baskets x items, 1 where a basket holds the item, each column divided by
    ``sqrt(baskets holding it + shrink)``."""
    x = sp.csr_matrix(incidence, dtype=np.float64)
    x.data[:] = 1.0
    x.sum_duplicates()
    x.data[:] = 1.0
    baskets = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    return sp.csr_matrix(x @ sp.diags(1.0 / np.sqrt(baskets + shrink)))


def ease_memory_bytes(n_items: int) -> int:
    """Peak memory of :func:`ease_weights` beyond its input: the dense float32 matrix plus the
    block buffers of building and pruning it."""
    return 4 * n_items * n_items + 3 * 4 * _BLOCK_ROWS * n_items


def ease_weights(matrix: sp.spmatrix, *, l2: float) -> np.ndarray:
    """EASE's item x item weight matrix B (float32, dense), solved in place.

    B = I - P diagMat(1 / diag(P)), P = (X'X + l2 I)^-1, computed as a Cholesky factorisation
    and inversion of one float32 matrix overwritten at each step (LAPACK spotrf/spotri), so the
    peak is one n x n float32 matrix (:func:`ease_memory_bytes`), not the several float64 copies
    of a textbook ``np.linalg.inv``.
    """
    from scipy.linalg import lapack

    x = sp.csc_matrix(matrix, dtype=np.float32)
    n = x.shape[1]
    gram = np.empty((n, n), dtype=np.float32)
    xt = sp.csr_matrix(x.T)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        gram[start:stop] = (xt[start:stop] @ x).toarray()
    gram[np.diag_indices(n)] += np.float32(l2)
    # The matrix is symmetric, so its C-ordered buffer read as Fortran order is the same matrix:
    # LAPACK works on it in place through the transposed view.
    fortran = gram.T
    factor, info = lapack.spotrf(fortran, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky factorisation failed (info={info})")
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed (info={info})")
    precision = inverse.T  # C-ordered again; only its upper triangle (lower of the view) is set.
    if not np.shares_memory(precision, gram):  # LAPACK copied after all: keep one matrix.
        gram[...] = precision
        precision = gram
        del inverse, factor
    # Mirror the computed triangle into the other, a block of rows at a time.
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        block = precision[start:stop, start:stop]
        upper = np.triu(block)
        block[...] = upper + np.triu(upper, 1).T
        if stop < n:
            precision[stop:, start:stop] = precision[start:stop, stop:].T
    diagonal = np.diag(precision).copy()
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        precision[start:stop] /= -diagonal[None, :]
    precision[np.diag_indices(n)] = 0.0
    return precision


def prune_dense(weights: np.ndarray, *, k: int) -> Neighbours:
    """Each row's ``k`` largest entries by magnitude (zeros dropped), as :class:`Neighbours`."""
    n_rows, n_cols = weights.shape
    k = min(k, max(n_cols - 1, 0))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for start in range(0, n_rows, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n_rows)
        block = weights[start:stop]
        if k <= 0:
            top = np.empty((stop - start, 0), dtype=np.int64)
        else:
            top = np.argpartition(-np.abs(block), k - 1, axis=1)[:, :k]
        top.sort(axis=1)
        values = np.take_along_axis(block, top, axis=1)
        keep = values != 0
        indptr[start + 1 : stop + 1] = keep.sum(axis=1)
        cols.append(top[keep].astype(np.int32))
        vals.append(values[keep].astype(np.float32))
    np.cumsum(indptr, out=indptr)
    return Neighbours(
        indptr=indptr,
        indices=np.concatenate(cols) if cols else np.empty(0, dtype=np.int32),
        data=np.concatenate(vals) if vals else np.empty(0, dtype=np.float32),
    )


def ease(matrix: sp.spmatrix, *, l2: float, k: int) -> Neighbours:
    """EASE (:func:`ease_weights`) pruned to each row's ``k`` largest weights by magnitude."""
    return prune_dense(ease_weights(matrix, l2=l2), k=k)
