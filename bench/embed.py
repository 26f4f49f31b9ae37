"""Embedding throughput: recommender.ml.embedding.TransformerEmbedder against sentence-transformers.

The baseline is ``SentenceTransformer(model).encode(texts, normalize_embeddings=True)`` with its
default settings (float32, batch size 32), measured in the same run on the same texts and device.
Both are warmed up first. The texts are timed in slices (``--slice`` texts per call: 1,000 on a
CPU, all of them on a GPU, where large calls are the point), each slice ``--repeats`` times with
the methods interleaved slice by slice, and a method's time is the sum of its fastest time per
slice: a burst of load from another process then hits a few slices of one method once, not the
whole ratio. Agreement is the cosine between our vector and the baseline's, per text.

Texts (real, from /work/shared/data):
- ``titles``: product titles, round-robin from the Online Retail descriptions (one per distinct
  text), Amazon Office titles and Instacart product names, so every source is represented
  (``--n``, default 5,000; ``--gpu-n`` on a GPU, default 50,000, cycling the pool if needed).
- ``descriptions``: H&M ``detail_desc`` texts of ``--desc-min-words`` to ``--desc-max-words``
  words, distinct. The H&M sample has only 9 descriptions of 60+ words, so the default floor is
  30 words (408 texts, about 40 words and 55 word pieces on average).

Usage (the figures in docs/benchmarks.md come from the first line):

    nice -n 10 .venv/bin/python bench/embed.py --device cpu
    .venv/bin/python bench/embed.py --device cuda          # on a GPU machine
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from recommender.ml.embedding import (  # noqa: E402  (needs the repository on sys.path)
    TransformerEmbedder,
    default_model_path,
)

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
WARMUP_TEXTS = 256
BASELINE = "sentence-transformers encode()"


@dataclass
class Row:
    device: str
    dataset: str
    n: int
    method: str
    seconds: float
    items_per_s: float
    ratio: float
    min_cos: float
    mean_cos: float


def titles_pool() -> list[str]:
    """Distinct titles, alternating between the three sources."""
    retail: list[str] = []
    path = SHARED_DATA / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        retail = [row["Description"] or "" for row in csv.DictReader(f)]
    with (SHARED_DATA / "amazon_office" / "products.csv").open(encoding="utf-8", newline="") as f:
        amazon = [row["title"] for row in csv.DictReader(f)]
    with (SHARED_DATA / "instacart" / "products.csv").open(encoding="utf-8", newline="") as f:
        instacart = [row["product_name"] for row in csv.DictReader(f)]
    sources = [_distinct(retail), _distinct(amazon), _distinct(instacart)]
    seen: set[str] = set()
    pool = []
    for text in itertools.chain.from_iterable(itertools.zip_longest(*sources)):
        if text is not None and text not in seen:
            seen.add(text)
            pool.append(text)
    return pool


def descriptions(min_words: int, max_words: int) -> list[str]:
    path = SHARED_DATA / "hm_sample" / "sample_articles_1686_with_desc.csv"
    with path.open(encoding="utf-8", newline="") as f:
        texts = [row["detail_desc"] for row in csv.DictReader(f)]
    return [t for t in _distinct(texts) if min_words <= len(t.split()) <= max_words]


def _distinct(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def take(pool: list[str], n: int) -> list[str]:
    return list(itertools.islice(itertools.cycle(pool), n))


def timed(run: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = run(texts)
    return time.perf_counter() - started, vectors


def measure(
    *,
    device: str,
    dataset: str,
    texts: list[str],
    baseline: Callable[[list[str]], np.ndarray],
    candidates: dict[str, Callable[[list[str]], np.ndarray]],
    repeats: int,
    slice_size: int,
) -> list[Row]:
    """Time every method on each slice of ``texts``, ``repeats`` times, methods interleaved
    slice by slice; a method's time is the sum over slices of its fastest repeat."""
    methods = {BASELINE: baseline, **candidates}
    # On a GPU the first large batches pick kernels and grow the allocator: warm up on all.
    warmup = texts if device != "cpu" else texts[:WARMUP_TEXTS]
    for run in methods.values():
        run(warmup)
    slices = [texts[i : i + slice_size] for i in range(0, len(texts), slice_size)]
    best: dict[str, list[float]] = {name: [float("inf")] * len(slices) for name in methods}
    empty = np.empty((0, 0), dtype=np.float32)
    parts: dict[str, list[np.ndarray]] = {name: [empty] * len(slices) for name in methods}
    from tqdm import tqdm

    bar = tqdm(total=repeats * len(texts) * len(methods), desc=dataset, unit="text")
    for _ in range(repeats):
        for index, part in enumerate(slices):
            for name, run in methods.items():
                seconds, parts[name][index] = timed(run, part)
                best[name][index] = min(best[name][index], seconds)
                bar.update(len(part))
    bar.close()
    reference = np.vstack(parts[BASELINE])
    rows = []
    for name in methods:
        seconds = sum(best[name])
        cos = np.sum(np.vstack(parts[name]) * reference, axis=1)
        rows.append(
            Row(
                device=device,
                dataset=dataset,
                n=len(texts),
                method=name,
                seconds=seconds,
                items_per_s=len(texts) / seconds,
                ratio=sum(best[BASELINE]) / seconds,
                min_cos=float(cos.min()),
                mean_cos=float(cos.mean()),
            )
        )
        print(f"  {dataset:<12} {name:<34} {len(texts) / seconds:>9.1f} items/s", flush=True)
    return rows


def bench_device(device: str, args: argparse.Namespace) -> list[Row]:
    import torch
    from sentence_transformers import SentenceTransformer

    model_path = str(args.model or default_model_path())
    st = SentenceTransformer(model_path, device=device)

    def baseline(texts: list[str]) -> np.ndarray:
        return st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    candidates: dict[str, Callable[[list[str]], np.ndarray]] = {}
    embedders = {}
    dtypes = ["float32", "auto"] if device == "cpu" else ["auto"]
    if args.dtypes:
        dtypes = args.dtypes.split(",")
    for dtype in dtypes:
        embedder = TransformerEmbedder(model_path=model_path, device=device, dtype=dtype)
        embedders[dtype] = embedder
        candidates[f"TransformerEmbedder {embedder.dtype}"] = embedder.embed
    if args.compile:
        embedder = TransformerEmbedder(model_path=model_path, device=device, compile=True)
        started = time.perf_counter()
        embedder.embed(take(titles_pool(), 2048))
        print(f"  torch.compile warm-up: {time.perf_counter() - started:.1f} s", flush=True)
        candidates[f"TransformerEmbedder {embedder.dtype} compiled"] = embedder.embed

    n = args.n if device == "cpu" else args.gpu_n
    datasets = {
        "titles": take(titles_pool(), n),
        "descriptions": descriptions(args.desc_min_words, args.desc_max_words),
    }
    if device != "cpu":
        datasets["descriptions"] = take(datasets["descriptions"], max(n // 10, 5000))
    if args.datasets:
        datasets = {name: datasets[name] for name in args.datasets.split(",")}
    rows = []
    threads = torch.get_num_threads()
    print(f"{device}: torch {torch.__version__}, {threads} threads", flush=True)
    for dataset, texts in datasets.items():
        rows += measure(
            device=device,
            dataset=dataset,
            texts=texts,
            baseline=baseline,
            candidates=candidates,
            repeats=args.repeats,
            # A GPU needs whole sets per call to overlap tokenisation with compute.
            slice_size=args.slice or (1000 if device == "cpu" else len(texts)),
        )
    return rows


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'device':<6} {'dataset':<12} {'n':>6} {'method':<40} {'items/s':>9} "
        f"{'x encode()':>10} {'min cos':>8} {'mean cos':>9}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.device:<6} {r.dataset:<12} {r.n:>6} {r.method:<40} {r.items_per_s:>9.1f} "
            f"{r.ratio:>10.2f} {r.min_cos:>8.5f} {r.mean_cos:>9.6f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "auto", "all"], default="all",
                        help="all (default): the CPU, then the GPU when there is one")  # fmt: skip
    parser.add_argument("--n", type=int, default=5000, help="titles on the CPU")
    parser.add_argument("--gpu-n", type=int, default=50000, help="titles on a GPU")
    parser.add_argument("--desc-min-words", type=int, default=30)
    parser.add_argument("--desc-max-words", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slice", type=int, help="texts per timed call (CPU 1,000, GPU all)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--model", type=Path, help="model directory (default: the packaged all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--dtypes", help="our embedder's dtypes, comma-separated (CPU default: float32,auto)"
    )
    parser.add_argument("--datasets", help="subset of titles,descriptions")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    if args.device == "all":
        devices = ["cpu", "cuda"] if cuda else ["cpu"]
    elif args.device == "auto":
        devices = ["cuda" if cuda else "cpu"]
    else:
        devices = [args.device]
    if "cuda" in devices and not cuda:
        parser.error("--device cuda: CUDA is not available on this machine")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = []
    for device in devices:
        rows += bench_device(device, args)
    print_table(rows)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
