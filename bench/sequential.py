"""The sequential model's cost: scoring per request and training throughput.

    nice -n 10 .venv/bin/python bench/sequential.py [--products 3815] [--customers 4000]
        [--length 60] [--requests 300] [--epochs 1] [--train-seconds 60] [--json FILE]

Target (issue 16): the sequential scoring of a 50-event history <= 5 ms per request on the CPU,
in a web process's setting (one thread).

What it does, framework-free (no database), on a synthetic shop shaped like Online Retail
(products with random unit vectors of dimension 384, customers with ``--length`` distinct
products each, drawn with a popularity skew, in time order):

1. Trains the sequential model with the default settings for ``--epochs`` epochs, at most
   ``--train-seconds``, on the CPU (and on CUDA when torch sees a GPU, in the same run):
   sequences (training windows) per second.
2. Times the query of one 50-event history, numpy forward pass (what serving runs) against
   torch under ``inference_mode`` with one thread, on the same weights.
3. Times the engine's ``recommend`` (k=10, both stages, one BLAS thread, the candidates
   searched in an hnswlib index as in a web process) for the same histories without and with
   the sequential source, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.ml.engine import EngineConfig, EngineData, History, HybridEngine  # noqa: E402
from recommender.ml.interactions import interactions_from_records  # noqa: E402
from recommender.ml.sequential import (  # noqa: E402
    SequentialConfig,
    SequentialModel,
    fit_sequential,
)
from recommender.ml.sequential.sequences import gap_buckets  # noqa: E402
from recommender.ml.vector_index import VectorIndex  # noqa: E402

DAY = 86_400.0
HISTORY = 50


def synthetic_shop(products: int, customers: int, length: int, seed: int = 0) -> EngineData:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, products + 1) ** 0.8
    weights /= weights.sum()
    users, items, stamps = [], [], []
    for u in range(customers):
        chosen = rng.choice(products, size=length, replace=False, p=weights)
        start = rng.uniform(0, 300) * DAY
        users += [u] * length
        items += (chosen + 1).tolist()
        stamps += (start + np.sort(rng.uniform(0, 60, size=length)) * DAY).tolist()
    ids = np.arange(1, products + 1, dtype=np.int64)
    vectors = rng.normal(size=(products, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    inter = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=stamps,
        catalogue_ids=ids,
    )
    return EngineData(
        item_ids=ids,
        item_vectors=vectors,
        has_vector=np.ones(products, dtype=bool),
        item_titles=[f"product {i}" for i in ids],
        item_categories=[f"category {i % 40}" for i in ids],
        item_created_at=np.zeros(products),
        item_active=np.ones(products, dtype=bool),
        interactions=inter,
    )


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def torch_query(model: SequentialModel, history: History) -> object:
    """The same query through the torch network (inference_mode, one thread)."""
    import torch

    from recommender.ml.sequential.network import SequentialNet, import_weights

    cfg = model.config
    net = SequentialNet(
        vectors=np.zeros((model.n_items, model.weights["proj_w"].shape[1]), dtype=np.float32),
        n_types=len(model.weights["type_emb"]),
        n_gaps=len(model.weights["gap_emb"]),
        config=cfg,
    )
    import_weights(net, model.weights)
    net.eval()
    items_table = torch.from_numpy(np.array(model.items))
    rows = model.rows_of(history.product_ids)[-cfg.max_len :]
    gaps = torch.from_numpy(gap_buckets(np.asarray(history.timestamps))[-cfg.max_len :][None])
    items = torch.from_numpy(rows[None])
    types = torch.full_like(items, 3)

    def run() -> None:
        with torch.inference_mode():
            x = net.in_ln(items_table[items]) + net.types(types) + net.gaps(gaps)
            length = items.shape[1]
            x = x + net.pos.weight[cfg.max_len - length :][None]
            mask = torch.tril(torch.ones(length, length, dtype=torch.bool))[None]
            for block in net.blocks:
                x = block(x, mask)
            net.out_ln(x[:, -1])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=3815)
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--length", type=int, default=60)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-seconds", type=float, default=60.0)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    import torch

    data = synthetic_shop(args.products, args.customers, args.length)
    inter = data.interactions
    print(f"shop: {args.products} products, {inter.n_users} customers, {len(inter)} events")
    config = SequentialConfig(
        max_epochs=args.epochs, patience=args.epochs, max_seconds=args.train_seconds
    )
    results: dict[str, object] = {"machine": f"{platform.node()} {platform.processor()}"}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    model = None
    for device in devices:
        fitted, fit = fit_sequential(inter, vectors=data.item_vectors, config=config, device=device)
        results[f"train_{device}"] = {
            "sequences": fit.sequences,
            "seconds": round(fit.seconds, 2),
            "sequences_per_second": round(fit.sequences_per_second, 1),
        }
        print(
            f"training on {device}: {fit.sequences} sequences, {args.epochs} epoch(s) at most "
            f"({fit.stopped}), {fit.seconds:.1f} s: {fit.sequences_per_second:.0f} sequences/s"
        )
        model = model or fitted
    assert model is not None
    rng = np.random.default_rng(1)
    histories = []
    for _ in range(args.requests):
        u = int(rng.integers(0, inter.n_users))
        events = np.flatnonzero(inter.user_idx == u)[:HISTORY]
        histories.append(
            History(
                product_ids=data.item_ids[inter.item_idx[events]].tolist(),
                event_types=["purchase"] * len(events),
                timestamps=inter.timestamp[events].tolist(),
            )
        )
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        numpy_ms = [
            t
            for h in histories
            for t in timed(
                lambda h=h: model.query(
                    product_ids=h.product_ids, event_types=h.event_types, timestamps=h.timestamps
                ),
                1,
            )
        ]
        torch_ms = [t for h in histories[:50] for t in timed(torch_query(model, h), 5)]
        engine = HybridEngine(EngineConfig()).fit(data, now=float(inter.timestamp.max()))
        served = engine.with_sequential(model)
        now = float(inter.timestamp.max())
        # The serving vector index (hnswlib), as a web process searches it.
        index = VectorIndex.build(ids=data.item_ids, vectors=data.item_vectors)

        def ann(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
            return index.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

        def alone(h: History) -> None:
            engine.recommend(h, k=10, now=now, ann=ann)

        def with_source(h: History) -> None:
            served.recommend(h, k=10, now=now, ann=ann)

        for h in histories[:5]:
            with_source(h)
        alone_ms = [t for h in histories for t in timed(lambda h=h: alone(h), 1)]
        with_ms = [t for h in histories for t in timed(lambda h=h: with_source(h), 1)]
    results["query_numpy"] = summary(numpy_ms)
    results["query_torch"] = summary(torch_ms)
    results["engine_alone"] = summary(alone_ms)
    results["engine_with_sequential"] = summary(with_ms)
    ratio = statistics.fmean(with_ms) / statistics.fmean(alone_ms)
    results["ratio_with_to_alone"] = round(ratio, 3)
    print(f"sequential query, {HISTORY}-event history, numpy: {results['query_numpy']}")
    print(
        f"sequential query, {HISTORY}-event history, torch (inference_mode, 1 thread): "
        f"{results['query_torch']}"
    )
    print(f"engine recommend k=10 without the sequential source: {results['engine_alone']}")
    print(
        f"engine recommend k=10 with the sequential source:    {results['engine_with_sequential']}"
    )
    print(f"ratio with / without: {ratio:.2f}x (target: sequential scoring <= 5 ms per request)")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
