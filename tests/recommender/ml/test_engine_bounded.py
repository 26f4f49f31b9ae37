"""The serving path never touches an array over the whole catalogue (so a request costs the
same at 1M products as at 10k).

Every per-product array of a fitted engine is replaced by a guard that raises when a numpy
operation reads it whole (a reduction, an arithmetic over all products, a full slice, a mask).
Reading the rows of some products (fancy indexing) and binary search are what a bounded request
does, and are allowed. Each kind of list is then requested: if any code path still scores the
catalogue, the guard names the operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from recommender.ml import neighbours as nb
from recommender.ml.engine import EngineConfig, EngineData, History, HybridEngine, exposure
from recommender.ml.interactions import interactions_from_records
from recommender.ranking.rotation import Demote

N_PRODUCTS = 4_000
DAY = 86_400.0
NOW = 400 * DAY
# Binary search reads O(log n) entries of the sorted ids: bounded by design.
ALLOWED_FUNCTIONS = {np.searchsorted}


class CatalogueGuard(np.ndarray):
    """An array that refuses to be read whole."""

    def _refuse(self, what: str) -> None:
        raise AssertionError(f"{what} over an array of {self.shape[0]} entries per request")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        for value in (*inputs, *kwargs.get("out", ())):
            if isinstance(value, CatalogueGuard):
                value._refuse(f"np.{ufunc.__name__}.{method}")
        return NotImplemented

    def __array_function__(self, func: Callable[..., Any], types: Any, args: Any, kwargs: Any):
        if func in ALLOWED_FUNCTIONS:
            plain = [np.asarray(a) if isinstance(a, CatalogueGuard) else a for a in args]
            return func(*plain, **kwargs)
        self._refuse(f"np.{func.__name__}")
        return NotImplemented

    def __getitem__(self, key: Any) -> Any:
        result = np.asarray(self).__getitem__(key)
        if isinstance(result, np.ndarray) and result.ndim and len(result) >= len(self) > 1:
            self._refuse("reading every entry")
        return result

    def __iter__(self):
        self._refuse("iterating")

    def tolist(self) -> Any:
        self._refuse("tolist")


def _guard(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).view(CatalogueGuard)


def _shop(seed: int = 0) -> EngineData:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, N_PRODUCTS + 1) * 3  # Keys are not row numbers.
    n_users = 1_500
    users, items, types, times = [], [], [], []
    popularity = 1.0 / np.arange(1, N_PRODUCTS + 1) ** 0.8
    popularity /= popularity.sum()
    for user in range(n_users):
        taste = rng.integers(0, 40)  # 40 categories of 100 products.
        sessions = rng.uniform(0, NOW, size=4)  # Events of a session share a basket.
        for _ in range(rng.integers(3, 30)):
            if rng.random() < 0.7:
                item = int(taste * 100 + rng.integers(0, 100))
            else:
                item = rng.choice(N_PRODUCTS, p=popularity)
            users.append(user)
            items.append(int(ids[item]))
            types.append("purchase" if rng.random() < 0.5 else "view")
            times.append(float(rng.choice(sessions)))
    vectors = rng.normal(size=(N_PRODUCTS, 16)).astype(np.float32)
    vectors[:, 0] += np.repeat(np.arange(40), 100) * 0.5
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    created = np.where(np.arange(N_PRODUCTS) % 50 == 0, NOW - 3 * DAY, 0.0)
    inter = interactions_from_records(
        user_ids=users, item_ids=items, event_types=types, timestamps=times, catalogue_ids=ids
    )
    return EngineData(
        item_ids=ids.astype(np.int64),
        item_vectors=vectors,
        has_vector=np.arange(N_PRODUCTS) % 97 != 0,
        item_titles=[f"product {pid}" for pid in ids],
        item_categories=[f"category {row // 100}" for row in range(N_PRODUCTS)],
        item_created_at=created,
        item_active=np.arange(N_PRODUCTS) % 31 != 0,
        interactions=inter,
    )


def _guarded(engine: HybridEngine) -> HybridEngine:
    for name in (
        "_ids", "_vectors", "_has_vector", "_active", "_has_events", "_created", "_category",
        "_category_rows", "_pop", "_trend",
    ):  # fmt: skip
        setattr(engine, name, _guard(getattr(engine, name)))
    engine._titles.offsets = _guard(engine._titles.offsets)
    for name in ("_knn", "_ease", "_cooc", "_cold"):
        lists = getattr(engine, name)
        if lists is not None:
            setattr(
                engine,
                name,
                nb.Neighbours(
                    indptr=_guard(lists.indptr),
                    indices=_guard(lists.indices),
                    data=_guard(lists.data),
                ),
            )
    return engine


@pytest.fixture(scope="module", params=["ease", "item_knn"])
def engines(request):
    data = _shop()
    limit = N_PRODUCTS if request.param == "ease" else 0
    config = EngineConfig(
        source_weights={
            "semantic": 0.8,
            "collaborative": 1.0,
            "popularity": 0.1,
            "trending": 0.05,
            "new_arrivals": 0.05,
            "session": 1.0,
        },
        cold_collaborative=0.5,
        exposure_slots=2,
        exposure_min_score=0.0,
        mmr_lambda=0.7,
        max_per_category=3,
    )
    plain = HybridEngine(config).fit(data, now=NOW, ease_max_items=limit, threads=1)
    guarded = _guarded(HybridEngine(config).fit(data, now=NOW, ease_max_items=limit, threads=1))
    assert plain.collaborative_model == request.param
    vectors, ids = data.item_vectors, data.item_ids

    def ann(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        # The serving index's contract: the n nearest by cosine (exact here, over a copy).
        scores = vectors @ vector
        best = np.argsort(-scores, kind="stable")[:n]
        return [(int(ids[i]), float(scores[i])) for i in best]

    return plain, guarded, ann, data


def _history(data: EngineData, rows: list[int]) -> History:
    return History(
        product_ids=[int(data.item_ids[r]) for r in rows],
        event_types=["purchase", "view"] * (len(rows) // 2) + ["click"] * (len(rows) % 2),
        timestamps=[NOW - DAY * i for i in range(len(rows))],
    )


def test_every_list_is_computed_without_reading_the_catalogue(engines, monkeypatch):
    plain, guarded, ann, data = engines
    # The exposure source scores the newest EXPOSURE_POOL products without events exactly: a
    # bounded list, which in this small shop would hold every one of them (30), and the guard
    # cannot tell that from a catalogue read. A shop with more of them than the pool is modelled.
    monkeypatch.setattr(exposure, "EXPOSURE_POOL", 8)
    warm = _history(data, [105, 110, 130, 2_050, 3_999, 12])
    requests: list[Callable[[HybridEngine], Any]] = [
        lambda e: e.recommend(warm, k=10, now=NOW, ann=ann),
        lambda e: e.recommend(warm, k=10, now=NOW, ann=ann, category="category 21"),
        lambda e: e.recommend(warm, k=10, now=NOW, ann=ann, exclude_ids=[int(data.item_ids[7])]),
        lambda e: e.recommend(History(), k=10, now=NOW, ann=ann),
        lambda e: e.recommend(
            History(), k=10, now=NOW, ann=ann, context_ids=[int(data.item_ids[205])]
        ),
        lambda e: e.similar(int(data.item_ids[105]), k=10, mode="hybrid", ann=ann),
        lambda e: e.bought_together(int(data.item_ids[105]), k=10),
        lambda e: e.trending(k=10),
        lambda e: e.trending(k=10, category="category 3"),
        lambda e: e.popular(k=10),
        lambda e: e.popular(k=10, category="category 3"),
        # Rotation's demotion runs in the rules hook, on the scored head only.
        lambda e: e.recommend(
            warm, k=10, now=NOW, ann=ann, rules=[Demote({int(data.item_ids[110]): 0.25})]
        ),
        lambda e: e.explain(warm, now=NOW, ann=ann),
        lambda e: e.rank(warm, k=50, now=NOW, ann=ann),
    ]
    for number, request in enumerate(requests):
        expected = request(plain)
        got = request(guarded)
        if isinstance(expected, np.ndarray):
            assert np.array_equal(got, expected)
        else:
            assert got == expected
        assert len(expected.sources if hasattr(expected, "sources") else expected) > 0, number
    # The exposure slots were exercised: products without events fill positions 9 and 10.
    slotted = [item for item in requests[0](guarded) if item.sources[0] == "exposure"]
    assert len(slotted) == 2
    assert all(not guarded._has_events[guarded.index_of(item.product_id)] for item in slotted)


def test_the_guard_catches_a_request_that_scores_the_whole_catalogue(engines):
    _, guarded, _, _ = engines
    with pytest.raises(AssertionError, match="per request"):
        guarded._pop.max()
    with pytest.raises(AssertionError, match="per request"):
        np.asarray(guarded._vectors[:]) @ np.ones(16, dtype=np.float32)


class _Batched:
    """A search offering ``many`` (as the serving index does), counting its calls."""

    def __init__(self, ann: Callable[[np.ndarray, int], list[tuple[int, float]]]) -> None:
        self.ann = ann
        self.batches: list[int] = []

    def __call__(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return self.ann(vector, n)

    def many(self, vectors: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        self.batches.append(len(vectors))
        return [
            (np.array([p for p, _ in pairs], dtype=np.int64), np.array([s for _, s in pairs]))
            for pairs in (self.ann(vector, n) for vector in vectors)
        ]


def test_a_search_that_answers_several_interests_at_once_gives_the_same_lists(engines):
    plain, _, ann, data = engines
    engine = plain.with_config(plain.config.replace(n_interests=3))
    # Two tastes (category 1, and category 20 far along the first axis): up to three interests
    # allowed, two found, searched in one call.
    history = _history(data, [105, 110, 130, 2_050, 2_060, 2_070])
    batched = _Batched(ann)

    lists = [engine.recommend(history, k=10, now=NOW, ann=search) for search in (ann, batched)]
    explained = [engine.explain(history, now=NOW, ann=search) for search in (ann, batched)]

    assert batched.batches == [2, 2]  # One call per list for both interests.
    assert [(r.product_id, r.score, r.reasons) for r in lists[1]] == [
        (r.product_id, r.score, r.reasons) for r in lists[0]
    ]
    assert explained[1] == explained[0]
