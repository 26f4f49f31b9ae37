"""Choose ``cold_collaborative`` on validation splits, never on the test products or items.

The share trades warm accuracy for reach of products without events, so it is chosen on both
kinds of validation at once:

- **Warm validation**: the leave-last-out step applied twice (second-to-last products), on
  training data from which the test split's held-out items *and* the cold-start test products
  are already removed.
- **Cold validation**: the cold-start protocol run again, with another seed, on the events left
  after removing the cold-start test products: a different 10% of products goes cold, so the
  test products never enter.

Rule: the share with the best cold validation NDCG@k among those whose warm validation NDCG@k is
at least ``1 - tolerance`` of the smallest share's (0: no stand-in), so the stand-in never costs
warm customers more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recommender.ml.engine import EngineConfig, EngineData, HybridEngine

from .rankers import _context, _train_data, hybrid_ranker, masked_config, score_rankers
from .splits import HeldOut, cold_start_split, leave_last_out

SHARES = (0.0, 0.25, 0.5, 1.0)


def _sample(held: list[HeldOut], max_users: int, seed: int) -> list[HeldOut]:
    if len(held) <= max_users:
        return held
    rng = np.random.default_rng(seed)
    return [held[i] for i in np.sort(rng.choice(len(held), size=max_users, replace=False))]


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
    test_warm = leave_last_out(inter, min_items=min_items)
    not_test_cold, _, _ = cold_start_split(inter, share=cold_share, seed=seed)
    base = test_warm.train & not_test_cold

    warm_val = leave_last_out(inter, min_items=min_items, steps=1, base=base)
    warm_held = _sample(warm_val.held_out, max_users, seed)

    # Cold validation: another draw (seed + 1) among the events left once test products are gone.
    remaining = np.flatnonzero(not_test_cold)
    sub_train, cold_held, cold_items = cold_start_split(
        inter.subset(not_test_cold), share=cold_share, seed=seed + 1
    )
    cold_mask = np.zeros(len(inter), dtype=bool)
    cold_mask[remaining[sub_train]] = True
    cold_held = _sample(cold_held, max_users, seed)
    log(
        f"cold_collaborative: {len(warm_held)} warm validation customers, "
        f"{len(cold_items)} cold validation products, {len(cold_held)} customers"
    )

    rows: list[dict[str, Any]] = []
    for share in shares:
        cfg = masked_config(config.replace(cold_collaborative=share), inter)
        row: dict[str, Any] = {"cold_collaborative": share}
        for name, mask, held in (
            ("warm", warm_val.train, warm_held),
            ("cold", cold_mask, cold_held),
        ):
            ctx = _context(data, mask, cfg)
            if name == "cold":
                # History: the customer's warm events up to the cold product's moment.
                for h in held:
                    events = ctx.user_events.get(h.user)
                    if events is not None:
                        ctx.user_events[h.user] = events[inter.timestamp[events] <= h.time]
            engine = HybridEngine(cfg).fit(
                _train_data(data, ctx.train), now=float(ctx.train.timestamp.max())
            )
            [result] = score_rankers(ctx, {"hybrid": hybrid_ranker(ctx, engine)}, held, (k,))
            row[f"{name}_ndcg@{k}"] = result.metrics[f"ndcg@{k}"]
            row[f"{name}_recall@{k}"] = result.metrics[f"recall@{k}"]
        log(f"  {row}")
        rows.append(row)
    return choose_share(rows, tolerance=tolerance, k=k), rows


def choose_share(rows: Sequence[dict[str, Any]], *, tolerance: float, k: int = 10) -> float:
    """The share with the best cold NDCG@k among those within ``tolerance`` of the smallest
    share's warm NDCG@k; ties go to the smaller share."""
    reference = min(rows, key=lambda r: r["cold_collaborative"])
    floor = (1.0 - tolerance) * reference[f"warm_ndcg@{k}"]
    allowed = [r for r in rows if r[f"warm_ndcg@{k}"] >= floor]
    best = max(allowed, key=lambda r: (r[f"cold_ndcg@{k}"], -r["cold_collaborative"]))
    return float(best["cold_collaborative"])
