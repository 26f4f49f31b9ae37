"""Merchandising rules end to end through the services: validation per field, compiling targets
to products, time windows, priority, and their effect on the served lists of the test shop.

Without rules, the shop serves a cold customer LAMP-1, LAMP-2, INK-2, MUG-1 (k=4) and C1 (who
bought INK-1 and INK-2) INK-3, LAMP-1, LAMP-2, MUG-2. Its product lists for MUG-1: similar by
meaning MUG-2 (0.585), COF-1 (0.430), LAMP-1 (0.120), LAMP-2 (0.112); by behaviour COF-1 (1.0),
MUG-2 (0.535); bought together COF-1, MUG-2. Trending: LAMP-1, LAMP-2, INK-2, MUG-1; in Office
INK-2, INK-3, INK-1.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from recommender.models import Customer, MerchandisingRule, Product, RecommendationKind
from recommender.ranking.rules import Boost, Filter, Pin, PromotionSlots, RuleSet
from recommender.ranking.types import RankedItem
from recommender.selectors.merchandising import merchandising_rule_names
from recommender.services import recommendations as service
from recommender.services.merchandising import (
    merchandising_rule_create,
    merchandising_rule_delete,
    merchandising_rule_update,
    merchandising_rules_cache_reset,
    merchandising_rules_compile,
    merchandising_rules_serving,
)
from recommender.services.merchandising_validation import MerchandisingRuleInvalid
from recommender.services.recommendations.product_lists import _product_list

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_rules():
    # The compiled rules are cached per process: never leak one test's rules into another.
    merchandising_rules_cache_reset()
    yield
    merchandising_rules_cache_reset()


def rule(**fields):
    return merchandising_rule_create(data={"name": "r", **fields})


def ids(recommendations):
    return [item.product.external_id for item in recommendations.items]


def cold(k=4, **kwargs):
    customer, _ = Customer.objects.get_or_create(external_id="NEW")
    return service.customer_recommendations(customer=customer, k=k, **kwargs)


def c1(k=4, **kwargs):
    return service.customer_recommendations(
        customer=Customer.objects.get(external_id="C1"), k=k, **kwargs
    )


def pk(external_id):
    return Product.objects.get(external_id=external_id).pk


# Validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"action": "boost", "target_kind": "category", "target_values": ["Home"],
             "factor": -1},
            {"factor": "must be greater than 1, got -1 (a bury sinks products)"},
        ),
        (
            {"action": "bury", "target_kind": "brand", "target_values": ["Acme"], "factor": 1.5},
            {"factor": "must be greater than 0 and less than 1, got 1.5"},
        ),
        (
            {"action": "pin", "target_kind": "product", "target_values": ["MUG-1"],
             "position": 0},
            {"position": "must be 1 or more, got 0"},
        ),
        (
            {"action": "pin", "target_kind": "product", "target_values": ["NOPE-1", "MUG-1"],
             "position": 1},
            {"target_values": "unknown product ids: NOPE-1"},
        ),
        (
            {"action": "filter", "target_kind": "category", "target_values": ["Home"],
             "starts_at": datetime(2026, 6, 2, tzinfo=UTC),
             "ends_at": datetime(2026, 6, 1, tzinfo=UTC)},
            {"ends_at": "must be after the start"},
        ),
        (
            {"action": "promote", "target_kind": "tag", "target_values": [], "share": 0},
            {"share": "must be greater than 0 and at most 1, got 0",
             "target_values": "list at least one tag"},
        ),
        (
            {"action": "boost", "target_kind": "price_range", "factor": 2,
             "price_min": "20", "price_max": "10"},
            {"price_max": "must be at least the minimum price (20), got 10"},
        ),
        (
            {"action": "pin", "target_kind": "category", "target_values": ["Home"],
             "position": 1},
            {"target_kind": "a pin targets products: choose 'product'"},
        ),
        (
            {"name": " ", "action": "shout", "target_kind": "product"},
            {"name": "give the rule a name",
             "action": "expected one of ['pin', 'boost', 'bury', 'filter', 'promote'], "
             "got 'shout'",
             "target_values": "list at least one product"},
        ),
        (
            {"action": "filter", "target_kind": "out_of_stock", "surfaces": ["similar", "home"]},
            {"surfaces": "unknown lists ['home']: choose from ['customer', 'session', "
             "'similar', 'bought_together', 'trending']"},
        ),
        (
            {"action": "filter", "target_kind": "out_of_stock", "surfaces": []},
            {"surfaces": "choose at least one list for the rule to apply to"},
        ),
    ],
)  # fmt: skip
def test_bad_rules_are_refused_naming_each_field_and_nothing_is_saved(shop, fields, errors):
    with pytest.raises(MerchandisingRuleInvalid) as refused:
        merchandising_rule_create(data={"name": "bad", **fields})

    assert refused.value.errors == errors
    assert MerchandisingRule.objects.count() == 0


def test_a_valid_rule_is_saved_normalised_with_the_other_actions_parameters_cleared(shop):
    saved = rule(
        action="boost", target_kind="category", target_values=" Home, Kitchen ,Home",
        factor="1.5", position=3, share=0.5, price_min=1, priority="7",
    )  # fmt: skip

    saved.refresh_from_db()
    assert (saved.target_values, saved.factor, saved.priority) == (["Home", "Kitchen"], 1.5, 7)
    assert (saved.position, saved.share, saved.price_min) == (None, None, None)
    # No lists named: every list; named ones are kept in one canonical order, once each.
    assert saved.surfaces == ["customer", "session", "similar", "bought_together", "trending"]
    named = rule(action="filter", target_kind="out_of_stock",
                 surfaces=["trending", "similar", "trending"])  # fmt: skip
    assert named.surfaces == ["similar", "trending"]


def test_an_update_is_checked_as_a_whole_and_a_refused_one_changes_nothing(shop):
    saved = rule(action="bury", target_kind="category", target_values=["Home"], factor=0.5)

    with pytest.raises(MerchandisingRuleInvalid) as refused:
        merchandising_rule_update(rule=saved, data={"action": "boost"})

    assert refused.value.errors == {
        "factor": "must be greater than 1, got 0.5 (a bury sinks products)"
    }
    saved.refresh_from_db()
    assert (saved.action, saved.factor) == ("bury", 0.5)


# Targets ----------------------------------------------------------------------------------------


def test_targets_resolve_to_the_active_products_they_match(shop):
    Product.objects.filter(external_id__in=["MUG-1", "MUG-2"]).update(brand="Acme")
    Product.objects.filter(external_id="MUG-2").update(is_active=False)
    Product.objects.filter(external_id="INK-1").update(price=Decimal("9.99"))
    Product.objects.filter(external_id="INK-2").update(price=Decimal("25.00"))
    Product.objects.filter(external_id="INK-3").update(attributes={"in_stock": False})
    Product.objects.filter(external_id="LAMP-1").update(attributes={"in_stock": True})
    rows = [
        MerchandisingRule(name="a", action="filter", target_kind="brand", target_values=["Acme"]),
        MerchandisingRule(name="b", action="filter", target_kind="price_range",
                          price_min=Decimal("10")),
        MerchandisingRule(name="c", action="filter", target_kind="out_of_stock"),
        MerchandisingRule(name="d", action="filter", target_kind="category",
                          target_values=["Home"]),
    ]  # fmt: skip

    compiled = merchandising_rules_compile(rules=rows)

    assert [r.product_ids for r in compiled.rules] == [
        frozenset({pk("MUG-1")}),
        frozenset({pk("INK-2")}),
        frozenset({pk("INK-3")}),
        frozenset({pk("LAMP-1"), pk("LAMP-2")}),
    ]
    # Unsaved rules (a preview's) get negative ids.
    assert [r.rule_id for r in compiled.rules] == [-1, -2, -3, -4]


def test_a_tag_rule_matches_merchant_tags(shop):
    Product.objects.filter(external_id="LAMP-2").update(tags=["candles", "summer"])
    Product.objects.filter(external_id="MUG-1").update(tags=["Candles"])  # Tags are exact.

    compiled = merchandising_rules_compile(
        rules=[MerchandisingRule(name="t", action="filter", target_kind="tag",
                                 target_values=["candles"])]
    )  # fmt: skip

    assert compiled.rules[0].product_ids == frozenset({pk("LAMP-2")})


def test_a_tag_rule_matches_accepted_auto_tags_and_their_children_only(shop):
    tagging = pytest.importorskip("tagging.models")
    mugs = tagging.Tag.objects.create(name="kitchen/mugs")
    coffee = tagging.Tag.objects.create(name="kitchen/coffee")
    lamps = tagging.Tag.objects.create(name="home/lights")
    now = timezone.now()
    tagging.ProductTag.objects.create(
        product=Product.objects.get(external_id="MUG-1"), tag=mugs, status="accepted",
        source="merchant", decided_at=now,
    )  # fmt: skip
    tagging.ProductTag.objects.create(
        product=Product.objects.get(external_id="COF-1"), tag=coffee, status="pending",
        source="zero_shot",
    )  # fmt: skip
    tagging.ProductTag.objects.create(
        product=Product.objects.get(external_id="LAMP-1"), tag=lamps, status="rejected",
        source="zero_shot", decided_at=now,
    )  # fmt: skip
    Product.objects.filter(external_id="INK-1").update(tags=["kitchen"])

    compiled = merchandising_rules_compile(
        rules=[MerchandisingRule(name="t", action="filter", target_kind="tag",
                                 target_values=["kitchen", "home/lights"])]
    )  # fmt: skip

    assert compiled.rules[0].product_ids == frozenset({pk("MUG-1"), pk("INK-1")})


def test_a_pin_keeps_the_order_of_its_products(shop):
    compiled = merchandising_rules_compile(
        rules=[MerchandisingRule(name="p", action="pin", target_kind="product",
                                 target_values=["MUG-2", "INK-1"], position=2)]
    )  # fmt: skip

    assert compiled.rules[0] == Pin(
        rule_id=-1, name="p", product_ids=(pk("MUG-2"), pk("INK-1")), position=2
    )


# Time windows and the serving cache -------------------------------------------------------------


def test_only_rules_inside_their_window_serve_and_the_window_is_start_inclusive(shop):
    t = datetime(2030, 1, 1, 12, tzinfo=UTC)
    always = rule(action="filter", target_kind="category", target_values=["Home"])
    later = rule(
        action="filter", target_kind="category", target_values=["Office"], starts_at=t,
        ends_at=t + timedelta(days=1),
    )  # fmt: skip
    off = rule(action="filter", target_kind="category", target_values=["Kitchen"])
    merchandising_rule_update(rule=off, data={"is_active": False})

    def serving_at(when):
        return [r.rule_id for r in merchandising_rules_serving(at=when).rules]

    assert serving_at(t - timedelta(seconds=1)) == [always.pk]
    assert serving_at(t) == [always.pk, later.pk]
    assert serving_at(t + timedelta(days=1)) == [always.pk]


def test_an_expired_or_future_rule_does_not_touch_the_served_list(shop):
    now = timezone.now()
    rule(
        action="filter", target_kind="category", target_values=["Home"],
        starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1),
    )  # fmt: skip
    rule(
        action="filter", target_kind="category", target_values=["Office"],
        starts_at=now + timedelta(days=1),
    )  # fmt: skip
    current = rule(
        action="filter", target_kind="category", target_values=["Kitchen"],
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1),
    )  # fmt: skip

    assert ids(cold(k=4)) == ["LAMP-1", "LAMP-2", "INK-2", "INK-3"]
    assert merchandising_rules_serving().rules[0].rule_id == current.pk


def test_a_change_made_elsewhere_is_served_after_the_refresh_interval(shop, settings):
    rule(action="filter", target_kind="category", target_values=["Home"])
    assert ids(cold(k=2)) == ["INK-2", "MUG-1"]

    # Another process edits the table: this one finds out at its next check.
    MerchandisingRule.objects.update(target_values=["Office"], updated_at=timezone.now())
    settings.RECSITE_RULES_REFRESH_SECONDS = 3600
    assert ids(cold(k=2)) == ["INK-2", "MUG-1"]
    settings.RECSITE_RULES_REFRESH_SECONDS = 0
    assert ids(cold(k=2)) == ["LAMP-1", "LAMP-2"]


def test_deleting_a_rule_stops_it_at_once(shop):
    saved = rule(action="filter", target_kind="category", target_values=["Home"])
    assert ids(cold(k=2)) == ["INK-2", "MUG-1"]

    merchandising_rule_delete(rule=saved)

    assert ids(cold(k=2)) == ["LAMP-1", "LAMP-2"]


# Effects on the served lists --------------------------------------------------------------------


def test_a_category_boost_lifts_its_products_and_names_the_rule(shop):
    boost = rule(
        name="Kitchen week", action="boost", target_kind="category", target_values=["Kitchen"],
        factor=3,
    )  # fmt: skip

    result = cold(k=4)

    assert ids(result) == ["LAMP-1", "MUG-1", "COF-1", "LAMP-2"]
    mug = result.items[1]
    assert mug.reasons == ("boosted \u00d73 by rule “Kitchen week”", "popular in Kitchen")
    assert (mug.rule_ids, mug.promoted) == ((boost.pk,), False)
    assert result.items[0].rule_ids == ()


def test_a_bury_sinks_a_category_out_of_the_top(shop):
    rule(name="Less lamps", action="bury", target_kind="category", target_values=["Home"],
         factor=0.1)  # fmt: skip

    assert ids(cold(k=4)) == ["INK-2", "MUG-1", "COF-1", "INK-3"]


def test_out_of_stock_products_are_filtered_out(shop):
    Product.objects.filter(external_id="INK-3").update(attributes={"in_stock": False})
    rule(name="Stock", action="filter", target_kind="out_of_stock")

    assert ids(c1(k=3)) == ["LAMP-1", "LAMP-2", "MUG-2"]


def test_a_pinned_product_comes_first_with_the_pin_reason_even_from_outside_the_candidates(shop):
    pin = rule(name="Hero mug", action="pin", target_kind="product", target_values=["COF-1"],
               position=1)  # fmt: skip

    result = c1(k=4)

    assert ids(result) == ["COF-1", "INK-3", "LAMP-1", "LAMP-2"]
    assert result.items[0].reason == "pinned at position 1 by rule “Hero mug”"
    assert result.items[0].rule_ids == (pin.pk,)


def test_a_pin_never_shows_a_bought_excluded_or_filtered_product(shop):
    rule(name="Bought", action="pin", target_kind="product", target_values=["INK-1"], position=1)
    rule(name="Excluded", action="pin", target_kind="product", target_values=["MUG-1"],
         position=1)  # fmt: skip
    rule(name="Filtered", action="pin", target_kind="product", target_values=["COF-1"],
         position=1)  # fmt: skip
    rule(name="No coffee", action="filter", target_kind="product", target_values=["COF-1"])

    result = c1(k=4, exclude=[pk("MUG-1")])

    assert ids(result) == ["INK-3", "LAMP-1", "LAMP-2", "MUG-2"]
    assert [item.rule_ids for item in result.items] == [(), (), (), ()]


def test_a_pin_respects_the_requested_category(shop):
    rule(name="Lamp", action="pin", target_kind="product", target_values=["LAMP-2"], position=1)
    rule(name="Ink", action="pin", target_kind="product", target_values=["INK-3"], position=2)

    assert ids(cold(k=3, category="Office")) == ["INK-2", "INK-3", "INK-1"]


def test_the_higher_priority_pin_wins_the_position(shop):
    rule(name="Low", action="pin", target_kind="product", target_values=["MUG-2"], position=1,
         priority=1)  # fmt: skip
    rule(name="High", action="pin", target_kind="product", target_values=["COF-1"], position=1,
         priority=5)  # fmt: skip

    result = c1(k=4)

    assert ids(result) == ["COF-1", "MUG-2", "INK-3", "LAMP-1"]
    assert [item.reason for item in result.items[:2]] == [
        "pinned at position 1 by rule “High”",
        "pinned at position 2 by rule “Low”",
    ]


def test_promoted_products_fill_their_slots_and_are_marked(shop):
    Product.objects.filter(external_id__in=["MUG-1", "COF-1"]).update(brand="Acme")
    scores = {item.product.external_id: item.score for item in cold(k=8).items}
    promo = rule(name="Acme days", action="promote", target_kind="brand",
                 target_values=["Acme"], share=0.5)  # fmt: skip

    result = cold(k=4)

    # Two slots at positions 1 and 3: MUG-1 was listed (4th), COF-1 comes from the head.
    assert ids(result) == ["MUG-1", "LAMP-1", "COF-1", "LAMP-2"]
    assert [item.promoted for item in result.items] == [True, False, True, False]
    assert result.items[0].reasons == ("promoted by rule “Acme days”", "popular in Kitchen")
    # The engine writes reasons for the k it returns only: one from beyond has the rule's.
    assert result.items[2].reasons == ("promoted by rule “Acme days”",)
    assert result.items[2].score == scores["COF-1"]  # Its score from the head.
    assert result.items[2].rule_ids == (promo.pk,)


def test_rules_apply_to_session_recommendations_too(shop):
    rule(name="Hero", action="pin", target_kind="product", target_values=["LAMP-2"], position=1)
    mug = Product.objects.get(external_id="MUG-1")

    result = service.session_recommendations(events=[service.SessionEvent(product=mug)], k=3)

    assert ids(result)[0] == "LAMP-2"
    assert result.items[0].reason == "pinned at position 1 by rule “Hero”"


def mug():
    return Product.objects.get(external_id="MUG-1")


def test_a_boost_reorders_a_similar_list_by_the_boosted_scores(shop):
    boost = rule(name="Home", action="boost", target_kind="category", target_values=["Home"],
                 factor=5)  # fmt: skip

    result = service.similar_products(product=mug(), k=4)

    # 0.120 x 5 = 0.602 and 0.112 x 5 = 0.561 against MUG-2's 0.585 and COF-1's 0.430.
    assert ids(result) == ["LAMP-1", "MUG-2", "LAMP-2", "COF-1"]
    assert result.items[0].reasons == (
        "boosted \u00d75 by rule “Home”", "similar to White ceramic coffee mug",
    )  # fmt: skip
    assert [item.rule_ids for item in result.items] == [(boost.pk,), (), (boost.pk,), ()]


def test_filters_and_buries_apply_to_behavioural_similar_and_bought_together_lists(shop):
    Product.objects.filter(external_id="MUG-2").update(attributes={"in_stock": False})
    rule(name="Stock", action="filter", target_kind="out_of_stock")
    rule(name="Less coffee", action="bury", target_kind="product", target_values=["COF-1"],
         factor=0.5)  # fmt: skip

    # By meaning: COF-1 0.430 x 0.5 = 0.215 still leads LAMP-1 (0.120); INK-2 fills the list.
    assert ids(service.similar_products(product=mug(), k=4)) == [
        "COF-1", "LAMP-1", "LAMP-2", "INK-2",
    ]  # fmt: skip
    behavioural = service.similar_products(product=mug(), k=4, mode="behavioural")
    assert [(i.product.external_id, i.score) for i in behavioural.items] == [("COF-1", 0.5)]
    assert ids(service.bought_together(product=mug(), k=4)) == ["COF-1"]


def test_a_pin_goes_into_a_bought_together_list_but_never_the_product_itself(shop):
    rule(name="Self", action="pin", target_kind="product", target_values=["MUG-1"], position=1,
         priority=9)  # fmt: skip
    pin = rule(name="Lantern", action="pin", target_kind="product", target_values=["LAMP-2"],
               position=2)  # fmt: skip

    result = service.bought_together(product=mug(), k=3)

    assert ids(result) == ["COF-1", "LAMP-2", "MUG-2"]
    assert result.items[1].reasons == ("pinned at position 2 by rule “Lantern”",)
    assert result.items[1].rule_ids == (pin.pk,)


def test_trending_lists_take_pins_and_promotions_within_the_requested_category(shop):
    Product.objects.filter(external_id="INK-1").update(brand="Acme")
    rule(name="Lantern", action="pin", target_kind="product", target_values=["LAMP-2"],
         position=1)  # fmt: skip
    rule(name="Acme", action="promote", target_kind="brand", target_values=["Acme"], share=0.25)

    everywhere = service.trending_products(k=4)
    office = service.trending_products(k=3, category="Office")

    # Equal priorities run in id order: the pin takes position 1, so the promotion's one slot
    # (position 1 of 4) moves to the next free position.
    assert ids(everywhere) == ["LAMP-2", "INK-1", "LAMP-1", "INK-2"]
    assert [item.promoted for item in everywhere.items] == [False, True, False, False]
    # LAMP-2 is not in Office: it is never inserted there; INK-1 is.
    assert ids(office) == ["INK-1", "INK-2", "INK-3"]


def test_a_rule_serves_only_the_lists_it_names(shop):
    rule(name="Trending only", action="pin", target_kind="product", target_values=["COF-1"],
         position=1, surfaces=["trending"])  # fmt: skip
    rule(name="Not similar", action="filter", target_kind="category", target_values=["Home"],
         surfaces=["customer", "session", "bought_together", "trending"])  # fmt: skip

    assert ids(service.trending_products(k=3)) == ["COF-1", "INK-2", "MUG-1"]
    assert ids(c1(k=4)) == ["INK-3", "MUG-2", "MUG-1", "COF-1"]
    assert ids(service.similar_products(product=mug(), k=4)) == [
        "MUG-2", "COF-1", "LAMP-1", "LAMP-2",
    ]  # fmt: skip
    session = service.session_recommendations(events=[service.SessionEvent(product=mug())], k=4)
    assert ids(session) == ["COF-1", "MUG-2", "INK-2", "INK-3"]
    # COF-1 leads on its own (bought with mugs): no rule moved it.
    assert [item.rule_ids for item in session.items] == [(), (), (), ()]


def test_explicit_rules_replace_the_saved_ones_on_product_lists_too(shop):
    rule(name="Lantern", action="pin", target_kind="product", target_values=["LAMP-2"],
         position=1)  # fmt: skip
    draft = merchandising_rules_compile(
        rules=[MerchandisingRule(name="Draft", action="filter", target_kind="category",
                                 target_values=["Home"])]
    )  # fmt: skip

    assert ids(service.trending_products(k=3, rules=RuleSet())) == ["LAMP-1", "LAMP-2", "INK-2"]
    assert ids(service.trending_products(k=3, rules=draft)) == ["INK-2", "MUG-1", "COF-1"]
    assert ids(service.bought_together(product=mug(), k=3, rules=draft)) == ["COF-1", "MUG-2"]
    assert ids(service.similar_products(product=mug(), k=3, rules=draft)) == [
        "MUG-2", "COF-1", "INK-2",
    ]  # fmt: skip


def test_explicit_rules_replace_the_saved_ones_for_a_preview(shop):
    rule(name="Saved", action="filter", target_kind="category", target_values=["Home"])
    preview = merchandising_rules_compile(
        rules=[MerchandisingRule(name="Draft", action="pin", target_kind="product",
                                 target_values=["COF-1"], position=1)],
        at=timezone.now(),
    )  # fmt: skip

    result = cold(k=3, rules=preview)

    assert ids(result) == ["COF-1", "LAMP-1", "LAMP-2"]
    assert result.items[0].rule_ids == (-1,)


def test_compiled_rules_are_the_ranking_objects(shop):
    boost = rule(action="boost", target_kind="category", target_values=["Home"], factor=2,
                 priority=3)  # fmt: skip
    out = rule(action="filter", target_kind="product", target_values=["MUG-1"])
    promo = rule(action="promote", target_kind="product", target_values=["COF-1"], share=0.2)

    served = merchandising_rules_serving().rules

    assert served == (
        Boost(rule_id=boost.pk, name="r", priority=3,
              product_ids=frozenset({pk("LAMP-1"), pk("LAMP-2")}), factor=2.0),
        Filter(rule_id=out.pk, name="r", product_ids=frozenset({pk("MUG-1")})),
        PromotionSlots(rule_id=promo.pk, name="r", product_ids=(pk("COF-1"),), share=0.2),
    )  # fmt: skip


def test_rule_names_by_id_leave_out_unknown_ids(shop):
    saved = rule(name="Kept", action="filter", target_kind="out_of_stock")

    assert merchandising_rule_names(ids=[saved.pk, saved.pk + 1, -1]) == {saved.pk: "Kept"}


def test_a_product_list_whose_head_a_filter_empties_is_filled_from_deeper(db):
    # 60 products of one brand rank first, then 20 of another: the filter removes the first 60.
    Product.objects.bulk_create(
        Product(external_id=f"P{i:03d}", title=f"Product {i}", brand="Big" if i < 60 else "Small")
        for i in range(80)
    )
    order = list(Product.objects.order_by("external_id").values_list("pk", flat=True))
    asked: list[int] = []

    def ranked_for(n):
        asked.append(n)
        return [
            RankedItem(index=-1, product_id=pid, score=1.0 - i / 100, sources=("trending",),
                       components={"trending": 1.0 - i / 100}, reasons=())
            for i, pid in enumerate(order[:n])
        ]  # fmt: skip

    rule(name="No Big", action="filter", target_kind="brand", target_values=["Big"],
         surfaces=["trending"])  # fmt: skip

    items = _product_list(surface=RecommendationKind.TRENDING, ranked_for=ranked_for, k=10)

    assert [item.product.external_id for item in items] == [f"P{i:03d}" for i in range(60, 70)]
    assert asked == [50, 200]
