"""Learning the reranker on a shop's own validation split, and the rule that keeps it only where
it wins (framework-free; the fit and ``evaluate`` run the same function).

Each validation customer (the last product held out, or with ``base`` the last one inside that
training mask) is one query: the blend's best ``DEPTH`` candidates for the customer's history,
labelled 1 for the held-out product (a customer whose product is outside them counts 0 for both
orders). Customers are split by a seeded draw: 70% train a LambdaRank model (LightGBM), 30%
compare it with the linear blend by NDCG@k (the held-out product's rank in the head, without
diversity). The model is kept only when it beats the blend there by more than ``min_gain`` and
the paired per-customer difference has a t statistic above 1.645 (one-sided 5%): a small
validation split does not make noise a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml.engine import AnnSearch, EngineConfig, EngineData, HybridEngine
from recommender.ml.engine.reranker import DEPTH, Reranker, candidate_features

from . import metrics
from .rankers import _context, _history, _train_data, masked_config
from .splits import validation_sample

MIN_QUERIES = 100  # Validation customers whose product is among the candidates, at least.
T_NEEDED = 1.645  # One-sided 5%: the paired gain over held-back customers is not noise.
PARAMS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "ndcg_eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 20,
    "verbose": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
}
ROUNDS = 50  # Small trees, few rounds: more overfit on Online Retail's validation split.


def learn_reranker(
    data: EngineData,
    *,
    config: EngineConfig,
    base: np.ndarray | None = None,
    min_items: int = 3,
    max_users: int = 3000,
    min_gain: float = 0.01,
    seed: int = 0,
    k: int = 10,
    fit_options: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = lambda _: None,
    search: AnnSearch | None = None,
) -> tuple[Reranker | None, dict[str, Any]]:
    """``(the reranker, what was measured)``; the reranker is None when it does not win (the
    measurement says why). ``search``: the validation candidates' vector search (the serving
    index, for a large catalogue); without it the validation engine searches its own vectors."""
    import lightgbm

    started = time.perf_counter()
    inter = data.interactions
    val, held = validation_sample(
        inter, base=base, min_items=min_items, max_users=max_users, seed=seed
    )
    if len(held) < MIN_QUERIES:
        return None, {
            "validation_customers": len(held),
            "verdict": f"kept the linear blend: {len(held)} validation customers, at least "
            f"{MIN_QUERIES} are needed to learn a reranker",
        }
    cfg = masked_config(config, inter)
    ctx = _context(data, val.train, cfg)
    engine = HybridEngine(cfg).fit(
        _train_data(data, ctx.train), now=float(ctx.train.timestamp.max()), **(fit_options or {})
    )
    queries = _queries(engine, ctx, held, search)
    usable = sum(q is not None for q in queries)
    note: dict[str, Any] = {"validation_customers": len(held), "queries": usable}
    if usable < MIN_QUERIES:
        note["verdict"] = (
            f"kept the linear blend: {usable} validation customers have their product among "
            f"the blend's best {DEPTH}, at least {MIN_QUERIES} are needed to learn a reranker"
        )
        return None, note
    cut = int(0.7 * len(queries))
    train = [q for q in queries[:cut] if q is not None]
    test = queries[cut:]
    labels = [np.eye(1, len(f), place).reshape(-1) for f, place in train]
    dataset = lightgbm.Dataset(
        np.concatenate([f for f, _ in train]),
        label=np.concatenate(labels),
        group=[len(f) for f, _ in train],
    )
    booster = lightgbm.train({**PARAMS, "seed": seed}, dataset, num_boost_round=ROUNDS)
    reranker = Reranker(booster.model_to_string(), {})
    blend_q = np.array([metrics.ndcg_at_k(q[1] + 1, k) if q else 0.0 for q in test])
    learned_q = np.array(
        [metrics.ndcg_at_k(_rank(reranker.predict(q[0]), q[1]), k) if q else 0.0 for q in test]
    )
    blend, learned = float(blend_q.mean()), float(learned_q.mean())
    gain = learned / blend - 1.0 if blend > 0 else 0.0
    # Paired over the held-back customers: the gain must also stand out from their noise.
    diffs = learned_q - blend_q
    spread = float(diffs.std(ddof=1)) / np.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    t_stat = float(diffs.mean()) / spread if spread > 0 else 0.0
    note.update(
        {
            "train_queries": len(train),
            "test_customers": len(test),
            f"blend_ndcg@{k}": round(blend, 5),
            f"reranker_ndcg@{k}": round(learned, 5),
            "gain": round(gain, 5),
            "t": round(t_stat, 2),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    if not (gain > min_gain and t_stat > T_NEEDED):
        note["verdict"] = (
            f"kept the linear blend: the reranker scored {learned:.4f} NDCG@{k} on held-back "
            f"validation customers against the blend's {blend:.4f} (paired t {t_stat:.2f}); "
            f"it needs a {min_gain:.0%} gain with t above {T_NEEDED}"
        )
        return None, note
    note["verdict"] = (
        f"reranker: {learned:.4f} NDCG@{k} on held-back validation customers against the "
        f"blend's {blend:.4f} ({gain * 100:+.1f}%)"
    )
    log(note["verdict"])
    reranker.note = dict(note)
    return reranker, note


def _rank(predicted: np.ndarray, place: int) -> int:
    """1-based rank of ``place`` by ``predicted`` over the blend's head, ties in the blend's
    order (as :meth:`Reranker.rescore` orders them)."""
    target = predicted[place]
    return 1 + int((predicted > target).sum()) + int((predicted[:place] == target).sum())


def _queries(
    engine: HybridEngine, ctx: Any, held: list[Any], search: AnnSearch | None
) -> list[tuple[np.ndarray, int] | None]:
    """Per validation customer: the features of the blend's head and the held-out product's
    place in it (None: outside the head, where neither order can reach the top k)."""
    queries: list[tuple[np.ndarray, int] | None] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for h in held:
            events = ctx.user_events.get(h.user)
            if events is None or not len(events):
                continue
            cset = engine.candidates(_history(ctx.data, events), now=h.time, ann=search)
            fused = engine.fuse(cset)
            head = fused.order[:DEPTH]
            at = int(np.searchsorted(cset.rows, h.item))
            found = at < len(cset.rows) and int(cset.rows[at]) == h.item
            place = np.flatnonzero(fused.positions[head] == at) if found else np.empty(0)
            if not len(place):
                queries.append(None)
                continue
            features = candidate_features(engine, cset, fused.positions[head], fused.total[head])
            queries.append((features, int(place[0])))
    return queries
