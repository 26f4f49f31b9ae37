"""Tuning: a saved configuration serves without a refit; the preview's lists and metrics."""

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from recommender.ml.interactions import interactions_from_records, tie_keys
from recommender.models import Customer, EngineBuild, Event, Product, RecommendationLog
from recommender.ranking.rules import Pin, RuleSet
from recommender.services import recommendations as service
from recommender.services import tuning
from tests.recommender.shop import SHOP_CONFIG, T0, add_event, shop_build

pytestmark = pytest.mark.django_db

# More weight on best sellers: the Home lantern (bought by three customers, this week) overtakes
# the mug for a mug buyer; nothing else in their list moves.
POPULAR = SHOP_CONFIG.replace(source_weights={**SHOP_CONFIG.source_weights, "popularity": 3.0})


@pytest.fixture
def shop(fresh_serving):
    """The test shop with the lines of each basket one second apart, in the order listed: what
    is held out (each customer's last line) is decided by time here, not by the tie order, which
    depends on database ids (``test_equal_times_are_ordered_by_the_seeded_tie_key``)."""
    return shop_build(line_gap=timedelta(seconds=1))


@pytest.fixture(autouse=True)
def _fresh_sample():
    tuning.tuning_sample_reset()
    yield
    tuning.tuning_sample_reset()


def _ids(result):
    return [item.product.external_id for item in result.items]


def _customer(external_id):
    return Customer.objects.get(external_id=external_id)


def test_a_saved_config_serves_at_once_without_a_refit(shop):
    c4 = _customer("C4")
    assert _ids(service.customer_recommendations(customer=c4, k=4)) == [
        "MUG-2", "LAMP-1", "LAMP-2", "INK-2",
    ]  # fmt: skip

    service.recommendation_config_save(config=POPULAR, note="more best sellers")
    result = service.customer_recommendations(customer=c4, k=4)

    assert _ids(result) == ["LAMP-1", "MUG-2", "LAMP-2", "INK-2"]
    assert EngineBuild.objects.count() == 1
    assert (result.config_version, result.engine_build) == (2, shop.pk)
    assert result.recommendation_id is not None
    log = RecommendationLog.objects.get(recommendation_id=result.recommendation_id)
    assert (log.config_version, log.engine_build) == (2, shop.pk)
    serving = service.serving_engine()
    assert (serving.config_version, serving.fit_config_version) == (2, 1)
    assert serving.pending_fit_fields == ()


def test_a_fit_time_change_is_saved_now_and_applied_at_the_next_fit(shop):
    c4 = _customer("C4")

    service.recommendation_config_save(config=SHOP_CONFIG.replace(ease_lambda=5.0))
    serving = service.serving_engine()

    assert (serving.config_version, serving.pending_fit_fields) == (2, ("ease_lambda",))
    assert serving.engine.config.ease_lambda == 200.0
    assert _ids(service.customer_recommendations(customer=c4, k=4)) == [
        "MUG-2", "LAMP-1", "LAMP-2", "INK-2",
    ]  # fmt: skip
    service.engine_build()
    refitted = service.serving_engine()
    assert (refitted.config_version, refitted.fit_config_version) == (2, 2)
    assert (refitted.pending_fit_fields, refitted.engine.config.ease_lambda) == ((), 5.0)


def test_the_preview_shows_before_and_after_lists_with_moves_and_metric_deltas(shop):
    preview = tuning.tuning_preview(
        config=POPULAR, customers=[_customer("C4"), _customer("C1")], k=4
    )

    c4, c1 = preview.customers
    assert [(p.item.product.external_id, p.moved) for p in c4.before] == [
        ("MUG-2", -1), ("LAMP-1", 1), ("LAMP-2", 0), ("INK-2", 0),
    ]  # fmt: skip
    assert [(p.item.product.external_id, p.moved) for p in c4.after] == [
        ("LAMP-1", 1), ("MUG-2", -1), ("LAMP-2", 0), ("INK-2", 0),
    ]  # fmt: skip
    assert [p.position for p in c4.after] == [1, 2, 3, 4]
    assert c4.after[0].item.reasons[0] == "popular in Home"
    # The ink buyer's fourth product changes: the blue mug drops out, the white one comes in.
    assert [(p.item.product.external_id, p.moved) for p in c1.before][3] == ("MUG-2", None)
    assert [(p.item.product.external_id, p.moved) for p in c1.after][3] == ("MUG-1", None)
    assert (c4.changed, c1.changed) == (True, True)
    # Two customers have three products (C2 and C5); each one's held-out product drops from
    # first to second place: NDCG@10 1 -> 1/log2(3).
    assert [(m.key, m.active, m.candidate, m.delta) for m in preview.metrics] == [
        ("recall@10", 1.0, 1.0, 0.0),
        ("ndcg@10", 1.0, 0.63093, -0.36907),
        ("coverage@10", 1.0, 1.0, 0.0),
        ("ild@10", 0.79057, 0.79057, 0.0),
    ]
    assert (preview.sample_customers, preview.eligible_customers) == (2, 2)
    assert (preview.active_version, preview.build_id, preview.pending_fit_fields) == (
        1, shop.pk, (),
    )  # fmt: skip
    assert RecommendationLog.objects.count() == 0  # A preview serves nothing.


def test_an_unchanged_config_previews_no_change(shop):
    preview = tuning.tuning_preview(config=SHOP_CONFIG, customers=[_customer("C4")], k=4)

    [c4] = preview.customers
    assert [p.moved for p in c4.after] == [0, 0, 0, 0]
    assert c4.changed is False
    assert [m.delta for m in preview.metrics] == [0.0, 0.0, 0.0, 0.0]


def test_a_fit_time_change_is_flagged_and_previewed_with_the_fitted_values(shop):
    preview = tuning.tuning_preview(
        config=SHOP_CONFIG.replace(knn_neighbours=5, mmr_lambda=1.0),
        customers=[_customer("C4")],
        k=4,
    )

    assert preview.pending_fit_fields == ("knn_neighbours",)
    assert [m.delta for m in preview.metrics] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"source_weights": {**SHOP_CONFIG.source_weights, "popularity": 3.0}},
        {"source_weights": {**SHOP_CONFIG.source_weights, "collaborative": 0.0}},
        {"mmr_lambda": 0.3},
        {"mmr_lambda": 0.5, "max_per_category": 1},
        {"half_life_days": 1.0, "n_interests": 1, "candidates_per_source": 2},
    ],
)
def test_the_metric_rankings_equal_the_engines_own(shop, changes):
    sample = tuning.tuning_sample()
    config = SHOP_CONFIG.replace(**changes)
    engine = sample.engine.with_config(tuning._masked(config, sample.event_types))

    fast = [tuning._rank(engine, c, k=10).tolist() for c in tuning._candidates(sample, config)]
    slow = [
        engine.rank(h, k=10, now=t).tolist()
        for h, t in zip(sample.histories, sample.times, strict=True)
    ]

    assert fast == slow
    assert all(len(ranked) for ranked in fast)
    assert np.array_equal(sample.targets, [2, 5])  # INK-3 for C2, COF-1 for C5.


def test_candidate_rules_apply_to_the_after_list_only(shop):
    coffee = Product.objects.get(external_id="COF-1")
    pin = Pin(rule_id=-1, name="Hero coffee", product_ids=(coffee.pk,), position=1)

    preview = tuning.tuning_preview(
        config=SHOP_CONFIG, customers=[_customer("C1")], k=3, rules=RuleSet((pin,))
    )

    [c1] = preview.customers
    assert [p.item.product.external_id for p in c1.before] == ["INK-3", "LAMP-1", "LAMP-2"]
    assert [(p.item.product.external_id, p.moved) for p in c1.after] == [
        ("COF-1", None), ("INK-3", -1), ("LAMP-1", -1),
    ]  # fmt: skip
    assert c1.after[0].item.reasons[0] == "pinned at position 1 by rule “Hero coffee”"


def test_the_sample_is_saved_beside_the_build_for_other_processes(shop, monkeypatch, settings):
    first = tuning.tuning_sample()
    expected = tuning.sample_metrics(first, POPULAR)
    tuning.tuning_sample_reset()  # As a fresh process: only the files are left.

    def no_loading(**kwargs):
        raise AssertionError("the sample was prepared again instead of loaded")

    monkeypatch.setattr(tuning, "engine_data_load", no_loading)
    second = tuning.tuning_sample()

    assert second is not first
    external = dict(Product.objects.values_list("pk", "external_id"))
    assert [[external[p] for p in h.product_ids] for h in second.histories] == [
        ["INK-1", "INK-2"], ["MUG-1", "MUG-2"],
    ]  # fmt: skip
    assert [list(h.event_types) for h in second.histories] == [["purchase"] * 2] * 2
    assert (second.times, second.targets.tolist()) == (first.times, [2, 5])
    assert tuning.sample_metrics(second, POPULAR) == expected
    stem = Path(shop.path).stem
    assert sorted(p.name for p in Path(shop.path).parent.glob("*.tuning-*")) == [
        f"{stem}.tuning-300-0.engine",
        f"{stem}.tuning-300-0.lock",
        f"{stem}.tuning-300-0.sample.npz",
    ]


def test_the_files_of_a_pruned_build_go_with_it(shop, settings, monkeypatch):
    settings.RECSITE_INDEX_KEEP = 1
    tuning.tuning_sample()

    newest = service.engine_build()
    tuning.tuning_sample()

    names = sorted(p.name for p in Path(shop.path).parent.glob("*.tuning-*"))
    assert [name.split(".tuning-")[0] for name in names] == [Path(newest.path).stem] * 3


def test_equal_times_are_ordered_by_the_seeded_tie_key_not_by_insertion_order(shop):
    # C9 buys three products in one basket (one time), inserted in one order, then the other.
    c9 = Customer.objects.create(external_id="C9")
    basket = ["INK-1", "MUG-1", "LAMP-2"]
    products = {p.external_id: p for p in Product.objects.filter(external_id__in=basket)}
    at = T0 + timedelta(days=30)
    # The order the splits give them: by the tie key of (customer id, product id), seed 0.
    keys = tie_keys(
        interactions_from_records(
            user_ids=[c9.pk] * 3,
            item_ids=[products[p].pk for p in basket],
            event_types=["purchase"] * 3,
            timestamps=[0.0] * 3,
        )
    )
    expected = [basket[i] for i in np.argsort(keys)]
    external = dict(Product.objects.values_list("pk", "external_id"))
    held_out = []
    for size, order in ((300, basket), (299, basket[::-1])):
        Event.objects.filter(customer=c9).delete()
        for p in order:
            add_event(c9, p, at=at)
        sample = tuning.tuning_sample(size=size)  # Another size: a sample of its own.
        [i] = [i for i, t in enumerate(sample.times) if t == at.timestamp()]
        # The last in key order is held out; the others are the history, in key order.
        held_out.append(external[int(sample.engine.item_ids[sample.targets[i]])])
        assert [external[p] for p in sample.histories[i].product_ids] == expected[:2]
    assert held_out == [expected[2], expected[2]]
