"""Neighbour-list fits: the blocked top-k against implicit's ``all_pairs_knn``, time and memory.

    nice -n 5 .venv/bin/python bench/neighbours.py [--items 1000000] [--users 1000000]
        [--events-per-user 50] [--k 100,200] [--seed 0] [--matrices item-kNN,co-occurrence]

A synthetic shop's user x item matrix (Zipf-like popularity, a geometric number of events per
customer) and its basket incidence (baskets of about two products), built the way the engine
builds them; then, each in a fresh process so its peak RSS is its own:

- baseline: ``implicit``'s ``all_pairs_knn`` (C++, all cores) with the post-processing the
  engine used before (drop the product itself and zeros, keep ``k`` a row), as it stood in
  ``recommender/ml/neighbours.py`` until 2026-12-06;
- recsite: ``recommender.ml.neighbours._all_pairs``, which takes implicit's way where the
  product has many entries to merge and blocks of products otherwise (scipy's sparse product a
  block at a time, each row pruned to its ``k`` best); the table says which way it took.

Prints, per matrix (item-kNN on the user x item matrix, co-occurrence on baskets) and method,
the wall time, the child's peak RSS above the data it was given, and whether both methods kept
the same values in every row (ties may pick different columns; the values must agree).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic(items: int, users: int, per_user: float, seed: int) -> tuple[sp.csr_matrix, ...]:
    rng = np.random.default_rng(seed)
    counts = rng.geometric(1.0 / per_user, size=users)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    popularity /= popularity.sum()
    item = rng.choice(items, size=int(counts.sum()), p=popularity).astype(np.int32)
    user = np.repeat(np.arange(users, dtype=np.int32), counts)
    weights = rng.choice(np.array([1.0, 2.0, 4.0]), size=len(item))
    matrix = sp.csr_matrix((weights, (user, item)), shape=(users, items))
    matrix.sum_duplicates()
    basket_of = np.arange(len(item)) // 2  # Baskets of two products in event order.
    baskets = sp.csr_matrix(
        (np.ones(len(item)), (basket_of, item)), shape=(int(basket_of[-1]) + 1, items)
    )
    return matrix, baskets


def _baseline(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    from implicit.nearest_neighbours import all_pairs_knn

    n = matrix.shape[1]
    result = all_pairs_knn(
        sp.csr_matrix(matrix, dtype=np.float64), k + 1, num_threads=0, show_progress=False
    )
    coo = sp.coo_matrix(result)
    keep = (coo.row != coo.col) & (coo.data > 0)
    pruned = sp.csr_matrix(
        (coo.data[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=(n, n)
    )
    lengths = np.diff(pruned.indptr)
    keep = np.ones(pruned.nnz, dtype=bool)
    for r in np.flatnonzero(lengths > k):
        start, end = pruned.indptr[r], pruned.indptr[r + 1]
        smallest = start + np.argsort(pruned.data[start:end], kind="stable")[: end - start - k]
        keep[smallest] = False
    coo = pruned.tocoo()
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=pruned.shape)


def _blocked(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    from recommender.ml.neighbours import _all_pairs

    return _all_pairs(matrix, k=k, threads=0)


def _child(method: str, matrix: sp.csr_matrix, k: int, out: mp.Queue) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = (_baseline if method == "baseline" else _blocked)(matrix, k)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.sort_indices()
    out.put((seconds, (peak - before) * 1024, result))


def run(method: str, matrix: sp.csr_matrix, k: int) -> tuple[float, int, sp.csr_matrix]:
    queue: mp.Queue = mp.get_context("fork").Queue()
    process = mp.get_context("fork").Process(target=_child, args=(method, matrix, k, queue))
    process.start()
    seconds, extra, result = queue.get()
    process.join()
    return seconds, extra, result


def same_values(a: sp.csr_matrix, b: sp.csr_matrix) -> str:
    """Whether every row kept as many entries with the same values (sorted within the row;
    float32 sums in a different order differ in the last bits); else how many rows differ."""
    lengths = np.diff(a.indptr)
    rows = np.repeat(np.arange(a.shape[0]), lengths)
    if not np.array_equal(lengths, np.diff(b.indptr)):
        return f"no: {int((lengths != np.diff(b.indptr)).sum()):,} rows differ in length"
    left = a.data[np.lexsort((a.data, rows))]
    right = b.data[np.lexsort((b.data, rows))]
    close = np.isclose(left, right, rtol=1e-5, atol=1e-7)
    if close.all():
        return "yes"
    return f"no: {len(np.unique(rows[~close])):,} rows differ in values"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events-per-user", type=float, default=20.0)
    parser.add_argument("--k", default="100,200")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--matrices", default="item-kNN,co-occurrence", help="Which of the two to measure."
    )
    args = parser.parse_args()
    started = time.perf_counter()
    matrix, baskets = synthetic(args.items, args.users, args.events_per_user, args.seed)
    print(
        f"{args.items:,} products, {args.users:,} customers, {matrix.nnz:,} (customer, product) "
        f"pairs, {baskets.shape[0]:,} baskets; built in {time.perf_counter() - started:.0f} s; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    from recommender.ml.neighbours import (
        _basket_scaled,
        _unit_columns,
        merge_bound,
        prefers_blocks,
    )

    ks = [int(k) for k in args.k.split(",")]
    cases = [
        ("item-kNN", lambda: _unit_columns(matrix), ks[0]),
        ("co-occurrence", lambda: _basket_scaled(baskets, 5.0), ks[-1]),
    ]
    print("| matrix | k | method | seconds | peak RSS above input | same values |")
    print("|---|---|---|---|---|---|")
    for name, scaled, k in cases:
        if name not in args.matrices.split(","):
            continue
        x = scaled()
        base_s, base_mem, base = run("baseline", x, k)
        new_s, new_mem, new = run("blocked", x, k)
        same = same_values(base, new)
        mib = f"{base_mem / 2**20:,.0f} MiB"
        print(f"| {name} | {k} | implicit all_pairs_knn (baseline) | {base_s:.1f} | {mib} | |")
        way = "blocks" if prefers_blocks(merge_bound(x), k) else "implicit"
        ratio = f"{new_s / base_s:.2f}x time, {new_mem / max(base_mem, 1):.2f}x memory"
        new_mib = f"{new_mem / 2**20:,.0f} MiB"
        print(f"| {name} | {k} | recsite, {way} ({ratio}) | {new_s:.1f} | {new_mib} | {same} |")


if __name__ == "__main__":
    main()
