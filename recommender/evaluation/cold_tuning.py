"""Choose the cold-start settings on validation splits, never on the test products or items:
the exposure slots (``exposure_slots``, ``exposure_min_score``) and the stand-in
collaborative share (``cold_collaborative``).

Both trade warm accuracy for reach of products without events, so they are chosen on two kinds
of validation at once:

- **Warm validation**: the leave-last-out step applied twice (second-to-last products), on
  training data from which the test split's held-out items *and* the cold-start test products
  are already removed.
- **Cold validation**: the cold-start protocol run again, with another seed, on the events left
  after removing the cold-start test products: a different 10% of products goes cold, so the
  test products never enter.

Rules, fixed before the runs:

- ``cold_collaborative``: the share with the best cold validation NDCG@k among those whose warm
  validation NDCG@k is at least ``1 - tolerance`` (0.5%) of the smallest share's (0: no
  stand-in).
- Exposure slots (:func:`choose_exposure`): the product's cold-start target is that products
  without behaviour stay recommendable, a cold Recall@k of at least ``COLD_TARGET`` (80%) of
  the content model's on the same cold validation customers; slots cost warm customers the
  products they displace. So: among the (slots, minimum score) points that reach the target and
  keep at least ``1 - MAX_WARM_LOSS`` (95%) of no slots' warm validation NDCG@k, the one with
  the best warm NDCG@k (ties: fewer slots, then the higher minimum score); when none reaches
  the target, the best cold Recall@k among the points within that warm limit. The shipped
  default applies the same rule to every dataset at once (:func:`choose_exposure_default`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml.engine import EngineConfig, EngineData, HybridEngine
from recommender.ml.interactions import Interactions

from . import metrics
from .rankers import (
    _Context,
    _context,
    _history,
    _train_data,
    baseline_rankers,
    hybrid_ranker,
    masked_config,
    score_rankers,
)
from .splits import HeldOut, cold_start_split, leave_last_out

SHARES = (0.0, 0.25, 0.5, 1.0)
EXPOSURE_SLOTS = (0, 1, 2, 3)
EXPOSURE_MIN_SCORES = (0.0, 0.5, 0.8, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
COLD_TARGET = 0.8  # Of the content model's cold Recall@k.
MAX_WARM_LOSS = 0.05  # Of no slots' warm NDCG@k.


def _sample(held: list[HeldOut], max_users: int, seed: int) -> list[HeldOut]:
    if len(held) <= max_users:
        return held
    rng = np.random.default_rng(seed)
    return [held[i] for i in np.sort(rng.choice(len(held), size=max_users, replace=False))]


@dataclass
class _Validation:
    """The two validation splits (see the module notes), with their sampled customers."""

    warm_train: np.ndarray
    warm_held: list[HeldOut]
    cold_train: np.ndarray
    cold_held: list[HeldOut]
    cold_items: int

    def context(self, data: EngineData, kind: str, config: EngineConfig) -> _Context:
        """The evaluation context of the ``warm`` or ``cold`` split; a cold customer's history
        is their warm events up to the cold product's moment."""
        inter = data.interactions
        if kind == "warm":
            return _context(data, self.warm_train, config)
        ctx = _context(data, self.cold_train, config)
        for h in self.cold_held:
            events = ctx.user_events.get(h.user)
            if events is not None:
                ctx.user_events[h.user] = events[inter.timestamp[events] <= h.time]
        return ctx

    def held(self, kind: str) -> list[HeldOut]:
        return self.warm_held if kind == "warm" else self.cold_held


def _validation(
    inter: Interactions,
    *,
    min_items: int,
    cold_share: float,
    seed: int,
    max_users: int,
    label: str,
    log: Callable[[str], None],
) -> _Validation:
    test_warm = leave_last_out(inter, min_items=min_items)
    not_test_cold, _, _ = cold_start_split(inter, share=cold_share, seed=seed)
    base = test_warm.train & not_test_cold
    warm_val = leave_last_out(inter, min_items=min_items, steps=1, base=base)
    # Cold validation: another draw (seed + 1) among the events left once test products are gone.
    remaining = np.flatnonzero(not_test_cold)
    sub_train, cold_held, cold_items = cold_start_split(
        inter.subset(not_test_cold), share=cold_share, seed=seed + 1
    )
    cold_mask = np.zeros(len(inter), dtype=bool)
    cold_mask[remaining[sub_train]] = True
    val = _Validation(
        warm_train=warm_val.train,
        warm_held=_sample(warm_val.held_out, max_users, seed),
        cold_train=cold_mask,
        cold_held=_sample(cold_held, max_users, seed),
        cold_items=len(cold_items),
    )
    log(
        f"{label}: {len(val.warm_held)} warm validation customers, {val.cold_items} cold "
        f"validation products, {len(val.cold_held)} customers"
    )
    return val


def tune_cold_collaborative(
    data: EngineData,
    *,
    config: EngineConfig,
    shares: Sequence[float] = SHARES,
    tolerance: float = 0.005,
    k: int = 10,
    min_items: int = 3,
    cold_share: float = 0.1,
    seed: int = 0,
    max_users: int = 3000,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[float, list[dict[str, Any]]]:
    """The chosen share and one row per share: warm and cold validation NDCG@k and Recall@k."""
    if not shares:
        raise ValueError("shares: expected at least one share")
    inter = data.interactions
    val = _validation(
        inter, min_items=min_items, cold_share=cold_share, seed=seed, max_users=max_users,
        label="cold_collaborative", log=log,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    for share in shares:
        cfg = masked_config(config.replace(cold_collaborative=share), inter)
        row: dict[str, Any] = {"cold_collaborative": share}
        for name in ("warm", "cold"):
            ctx = val.context(data, name, cfg)
            engine = HybridEngine(cfg).fit(
                _train_data(data, ctx.train), now=float(ctx.train.timestamp.max())
            )
            [result] = score_rankers(
                ctx, {"hybrid": hybrid_ranker(ctx, engine)}, val.held(name), (k,)
            )
            row[f"{name}_ndcg@{k}"] = result.metrics[f"ndcg@{k}"]
            row[f"{name}_recall@{k}"] = result.metrics[f"recall@{k}"]
        log(f"  {row}")
        rows.append(row)
    return choose_share(rows, tolerance=tolerance, k=k), rows


def tune_exposure(
    data: EngineData,
    *,
    config: EngineConfig,
    slots: Sequence[int] = EXPOSURE_SLOTS,
    min_scores: Sequence[float] = EXPOSURE_MIN_SCORES,
    k: int = 10,
    min_items: int = 3,
    cold_share: float = 0.1,
    seed: int = 0,
    max_users: int = 3000,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
) -> tuple[tuple[int, float], list[dict[str, Any]], dict[str, Any]]:
    """The chosen ``(exposure_slots, exposure_min_score)``, one row per grid point (warm and
    cold validation NDCG@k and Recall@k; no slots once, whatever the minimum score), and the
    reference figures: the content model's cold validation Recall@k and NDCG@k, the number of
    customers and cold products.

    Slots and the similarity are request-time settings: each split's engine is fitted once and
    each customer's candidate set generated once; every grid point only re-ranks it."""
    if 0 not in slots:
        raise ValueError("slots: expected 0 (no slots) among them: it is the warm reference")
    inter = data.interactions
    val = _validation(
        inter, min_items=min_items, cold_share=cold_share, seed=seed, max_users=max_users,
        label="exposure", log=log,
    )  # fmt: skip
    points = [(0, 0.0)] + [(n, float(t)) for n in slots if n > 0 for t in min_scores]
    widest = config.replace(exposure_slots=max(slots), exposure_min_score=min(min_scores))
    cfg = masked_config(widest, inter)
    figures: dict[tuple[int, float], dict[str, float]] = {p: {} for p in points}
    reference: dict[str, Any] = {
        "warm_customers": len(val.warm_held),
        "cold_customers": len(val.cold_held),
        "cold_products": val.cold_items,
    }
    for name in ("warm", "cold"):
        ctx = val.context(data, name, cfg)
        engine = HybridEngine(cfg).fit(
            _train_data(data, ctx.train), now=float(ctx.train.timestamp.max()),
            **(fit_options or {}),
        )  # fmt: skip
        variants = {
            point: engine.with_config(
                cfg.replace(exposure_slots=point[0], exposure_min_score=point[1])
            )
            for point in points
        }
        sums = {point: [0.0, 0.0] for point in points}
        users = 0
        with threadpool_limits(limits=1, user_api="blas"):
            for h in val.held(name):
                events = ctx.user_events.get(h.user)
                if events is None or not len(events):
                    continue
                users += 1
                cset = engine.candidates(_history(data, events), now=h.time)
                for point, variant in variants.items():
                    fused = variant.fuse(cset)
                    ranked = (
                        variant.rank_fused(fused, k=k)
                        if len(fused.positions)
                        else np.empty(0, dtype=np.int64)
                    )
                    rank = metrics.rank_of(ranked, h.item)
                    sums[point][0] += metrics.ndcg_at_k(rank, k)
                    sums[point][1] += metrics.recall_at_k(rank, k)
        for point in points:
            figures[point][f"{name}_ndcg@{k}"] = round(sums[point][0] / max(users, 1), 5)
            figures[point][f"{name}_recall@{k}"] = round(sums[point][1] / max(users, 1), 5)
        if name == "cold":
            [content] = score_rankers(
                ctx, baseline_rankers(ctx, names=("content",)), val.cold_held, (k,)
            )
            reference[f"content_cold_recall@{k}"] = content.metrics[f"recall@{k}"]
            reference[f"content_cold_ndcg@{k}"] = content.metrics[f"ndcg@{k}"]
        log(f"exposure: {name} validation scored ({users} customers)")
    rows = [{"exposure_slots": n, "exposure_min_score": t, **figures[(n, t)]} for n, t in points]
    return choose_exposure(rows, reference, k=k), rows, reference


def choose_exposure(
    rows: Sequence[dict[str, Any]],
    reference: Mapping[str, Any],
    *,
    target: float = COLD_TARGET,
    max_warm_loss: float = MAX_WARM_LOSS,
    k: int = 10,
) -> tuple[int, float]:
    """One dataset's point (see the module notes): the best warm NDCG@k among the points that
    reach ``target`` x the content model's cold Recall@k within ``max_warm_loss``; without one,
    the best cold Recall@k within ``max_warm_loss``."""
    return choose_exposure_default({"": (rows, reference)}, target=target,
                                   max_warm_loss=max_warm_loss, k=k)  # fmt: skip


def choose_exposure_default(
    sweeps: Mapping[str, tuple[Sequence[dict[str, Any]], Mapping[str, Any]]],
    *,
    target: float = COLD_TARGET,
    max_warm_loss: float = MAX_WARM_LOSS,
    k: int = 10,
) -> tuple[int, float]:
    """The rule of :func:`choose_exposure` over several datasets' sweeps (``{dataset: (rows,
    reference)}`` as :func:`tune_exposure` returns them): among the points that reach the
    target within the warm limit on every dataset, the best worst case of warm NDCG@k relative
    to no slots'; without one, among the points within the warm limit on every dataset, the
    best worst case of cold Recall@k relative to the content model's. Ties go to fewer slots,
    then the higher minimum score."""
    if not sweeps:
        raise ValueError("sweeps: expected at least one dataset")
    within: set[tuple[int, float]] | None = None
    reaching: set[tuple[int, float]] | None = None
    warm: dict[tuple[int, float], float] = {}
    cold: dict[tuple[int, float], float] = {}
    for rows, reference in sweeps.values():
        content = float(reference[f"content_cold_recall@{k}"])
        none = next(r for r in rows if r["exposure_slots"] == 0)
        ours: set[tuple[int, float]] = set()
        enough: set[tuple[int, float]] = set()
        for row in rows:
            point = (int(row["exposure_slots"]), float(row["exposure_min_score"]))
            warm_ratio = row[f"warm_ndcg@{k}"] / max(none[f"warm_ndcg@{k}"], 1e-12)
            cold_ratio = row[f"cold_recall@{k}"] / content if content > 0 else 0.0
            warm[point] = min(warm.get(point, warm_ratio), warm_ratio)
            cold[point] = min(cold.get(point, cold_ratio), cold_ratio)
            if warm_ratio >= 1.0 - max_warm_loss:
                ours.add(point)
                if cold_ratio >= target:
                    enough.add(point)
        within = ours if within is None else within & ours
        reaching = enough if reaching is None else reaching & enough
    assert within  # No slots loses nothing: it is within the limit on every dataset.
    if reaching:
        return max(reaching, key=lambda p: (warm[p], -p[0], p[1]))
    return max(within, key=lambda p: (cold[p], -p[0], p[1]))


def choose_share(rows: Sequence[dict[str, Any]], *, tolerance: float, k: int = 10) -> float:
    """The share with the best cold NDCG@k among those within ``tolerance`` of the smallest
    share's warm NDCG@k; ties go to the smaller share."""
    reference = min(rows, key=lambda r: r["cold_collaborative"])
    floor = (1.0 - tolerance) * reference[f"warm_ndcg@{k}"]
    allowed = [r for r in rows if r[f"warm_ndcg@{k}"] >= floor]
    best = max(allowed, key=lambda r: (r[f"cold_ndcg@{k}"], -r["cold_collaborative"]))
    return float(best["cold_collaborative"])
