"""Merchandising rules as pure functions over ranked lists: exact lists, scores and reasons."""

import pytest

from recommender.ranking.rules import (
    Boost,
    Bury,
    Filter,
    HeadRecorder,
    Pin,
    PromotionSlots,
    RuleSet,
    ScoreTable,
    apply_positional,
    apply_score_rules,
)
from recommender.ranking.types import RankedItem


def item(pid, score=1.0, **extra):
    return RankedItem(
        index=pid,
        product_id=pid,
        score=score,
        sources=("semantic",),
        components={"semantic": score},
        reasons=(f"reason {pid}",),
        **extra,
    )


def pids(items):
    return [i.product_id for i in items]


# Score rules ----------------------------------------------------------------------------------


def test_a_boost_multiplies_the_score_and_says_so():
    given = [item(1, 0.9), item(2, 0.6), item(3, 0.5)]
    boost = Boost(rule_id=7, name="Summer candles", product_ids=frozenset({3}), factor=2.0)

    out = apply_score_rules(given, [boost])

    assert pids(out) == [3, 1, 2]
    assert out[0].score == 1.0
    assert out[0].rule_ids == (7,)
    assert out[0].rule_reasons == ("boosted \u00d72 by rule “Summer candles”",)
    assert out[0].reasons == ("reason 3",)  # The engine's own reasons are left alone.
    assert (out[1].rule_ids, out[1].rule_reasons) == ((), ())


def test_a_bury_sinks_the_matching_products():
    given = [item(1, 0.9), item(2, 0.6), item(3, 0.5)]
    bury = Bury(rule_id=4, name="Old stock", product_ids=frozenset({1}), factor=0.5)

    out = apply_score_rules(given, [bury])

    assert pids(out) == [2, 3, 1]
    assert out[2].score == 0.45
    assert out[2].rule_reasons == ("buried \u00d70.5 by rule “Old stock”",)


def test_a_filter_removes_the_matching_products_without_a_trace_on_the_others():
    given = [item(1), item(2), item(3)]

    out = apply_score_rules(given, [Filter(rule_id=1, name="Out", product_ids=frozenset({2}))])

    assert pids(out) == [1, 3]
    assert [i.rule_ids for i in out] == [(), ()]


def test_score_rules_run_in_priority_order_and_both_reasons_are_kept():
    given = [item(1, 0.5)]
    low = Boost(rule_id=1, name="low", product_ids=frozenset({1}), factor=1.5, priority=1)
    high = Bury(rule_id=2, name="high", product_ids=frozenset({1}), factor=0.5, priority=9)

    out = apply_score_rules(given, [low, high])

    assert out[0].rule_ids == (2, 1)
    assert out[0].rule_reasons == (
        "buried \u00d70.5 by rule “high”",
        "boosted \u00d71.5 by rule “low”",
    )
    assert out[0].score == 0.375


def test_the_score_table_equals_the_rules_run_one_by_one_in_priority_order():
    given = [item(1, 0.9), item(2, 0.6), item(3, 0.5), item(4, 0.4)]
    rules: list[Boost | Bury | Filter] = [
        Boost(rule_id=1, name="a", product_ids=frozenset({2, 3}), factor=1.5, priority=1),
        Bury(rule_id=2, name="b", product_ids=frozenset({3, 1}), factor=0.5, priority=4),
        Filter(rule_id=3, name="c", product_ids=frozenset({4})),
    ]
    one_by_one = list(given)
    for rule in sorted(rules, key=lambda r: r.order_key):
        one_by_one = rule(one_by_one)

    table = ScoreTable(rules)

    assert table(list(given)) == one_by_one
    assert pids(one_by_one) == [1, 2, 3]
    assert one_by_one[2].rule_ids == (2, 1)
    assert one_by_one[2].score == 0.375
    assert RuleSet(tuple(rules)).prepared().score_hook(list(given)) == one_by_one
    assert bool(ScoreTable([])) is False


def test_a_boost_refuses_a_factor_that_is_not_positive():
    with pytest.raises(ValueError, match="factor: must be a finite number > 0, got -1"):
        Boost(rule_id=1, name="x", product_ids=frozenset(), factor=-1.0)


def test_the_head_recorder_keeps_the_list_and_changes_nothing():
    recorder = HeadRecorder()
    given = [item(1), item(2)]

    assert recorder(given) == given
    assert recorder.items == given


# Time windows and priority ----------------------------------------------------------------------


def test_a_rule_set_keeps_the_rules_valid_at_a_time_in_priority_order():
    a = Filter(rule_id=1, name="a", product_ids=frozenset(), priority=0)
    b = Filter(rule_id=2, name="b", product_ids=frozenset(), priority=5, starts_at=100.0)
    c = Filter(rule_id=3, name="c", product_ids=frozenset(), priority=5, ends_at=100.0)
    d = Filter(rule_id=4, name="d", product_ids=frozenset(), priority=0)
    rules = RuleSet((a, b, c, d))

    assert [r.rule_id for r in rules.at(99.0).rules] == [3, 1, 4]
    # The window is [starts_at, ends_at): at 100 b has started and c has ended.
    assert [r.rule_id for r in rules.at(100.0).rules] == [2, 1, 4]


def test_a_rule_set_keeps_the_rules_of_one_list_and_stays_prepared_when_all_apply():
    everywhere = Filter(rule_id=1, name="a", product_ids=frozenset({1}))
    trending = Pin(rule_id=2, name="t", product_ids=(2,), position=1,
                   surfaces=frozenset({"trending"}))  # fmt: skip
    lists = Filter(rule_id=3, name="l", product_ids=frozenset({3}),
                   surfaces=frozenset({"customer", "session"}))  # fmt: skip
    rules = RuleSet((everywhere, trending, lists)).prepared()

    assert [r.rule_id for r in rules.on("customer").rules] == [1, 3]
    assert [r.rule_id for r in rules.on("trending").rules] == [1, 2]
    assert rules.on("similar").filtered == frozenset({1})
    only_everywhere = RuleSet((everywhere,)).prepared()
    assert only_everywhere.on("similar") is only_everywhere


def test_a_rule_set_sorts_rules_into_score_and_positional_ones():
    boost = Boost(rule_id=1, name="b", product_ids=frozenset({1}), factor=2.0)
    bury = Bury(rule_id=2, name="y", product_ids=frozenset({2}), factor=0.5)
    out = Filter(rule_id=3, name="f", product_ids=frozenset({3, 4}))
    more = Filter(rule_id=4, name="g", product_ids=frozenset({5}))
    pin = Pin(rule_id=5, name="p", product_ids=(6,), position=1)
    promo = PromotionSlots(rule_id=6, name="s", product_ids=(7,), share=0.1)
    rules = RuleSet((boost, bury, out, more, pin, promo))

    assert rules.score_rules == (boost, bury, out, more)
    assert rules.positional == (pin, promo)
    assert rules.filtered == frozenset({3, 4, 5})
    assert bool(RuleSet()) is False


# Pins -------------------------------------------------------------------------------------------


def test_a_pin_moves_a_listed_product_to_its_position():
    given = [item(1), item(2), item(3), item(4)]
    pin = Pin(rule_id=9, name="Hero", product_ids=(3,), position=1)

    out = apply_positional(given, [pin], k=4)

    assert pids(out) == [3, 1, 2, 4]
    assert out[0].rule_ids == (9,)
    assert out[0].rule_reasons == ("pinned at position 1 by rule “Hero”",)
    assert out[0].reasons == ("reason 3",)


def test_a_pinned_product_that_is_not_a_candidate_is_inserted_and_pushes_the_last_off():
    given = [item(1), item(2), item(3)]
    pin = Pin(rule_id=9, name="Hero", product_ids=(42,), position=2)

    out = apply_positional(given, [pin], k=3)

    assert pids(out) == [1, 42, 2]
    assert (out[1].score, out[1].sources, out[1].reasons) == (0.0, (), ())
    assert out[1].rule_reasons == ("pinned at position 2 by rule “Hero”",)


def test_a_pinned_product_from_the_scored_head_keeps_its_score_and_sources():
    given = [item(1, 0.9), item(2, 0.8)]
    pool = {5: item(5, 0.3)}

    out = apply_positional(
        given, [Pin(rule_id=1, name="p", product_ids=(5,), position=1)], k=2, pool=pool
    )

    assert pids(out) == [5, 1]
    assert (out[0].score, out[0].sources) == (0.3, ("semantic",))


def test_several_pinned_products_take_consecutive_positions():
    given = [item(1), item(2), item(3), item(4)]
    pin = Pin(rule_id=1, name="p", product_ids=(4, 8), position=2)

    out = apply_positional(given, [pin], k=4)

    assert pids(out) == [1, 4, 8, 2]
    assert out[2].rule_reasons == ("pinned at position 3 by rule “p”",)


def test_a_higher_priority_pin_keeps_the_position_and_the_other_moves_down():
    given = [item(1), item(2), item(3)]
    low = Pin(rule_id=1, name="low", product_ids=(3,), position=1, priority=0)
    high = Pin(rule_id=2, name="high", product_ids=(2,), position=1, priority=10)

    out = apply_positional(given, [low, high], k=3)

    assert pids(out) == [2, 3, 1]
    assert out[0].rule_reasons == ("pinned at position 1 by rule “high”",)
    assert out[1].rule_reasons == ("pinned at position 2 by rule “low”",)


def test_blocked_products_are_never_pinned_and_a_pin_beyond_k_does_nothing():
    given = [item(1), item(2), item(3)]
    blocked_pin = Pin(rule_id=1, name="b", product_ids=(7,), position=1)
    far_pin = Pin(rule_id=2, name="far", product_ids=(8,), position=4)

    out = apply_positional(given, [blocked_pin, far_pin], k=3, blocked={7})

    assert pids(out) == [1, 2, 3]
    assert [i.rule_ids for i in out] == [(), (), ()]


def test_a_pin_on_a_short_list_names_the_position_it_really_got():
    given = [item(1)]

    out = apply_positional(given, [Pin(rule_id=1, name="p", product_ids=(5,), position=3)], k=5)

    assert pids(out) == [1, 5]
    assert out[1].rule_reasons == ("pinned at position 2 by rule “p”",)


def test_a_pin_reason_leads_the_reasons_of_a_boosted_item():
    boosted = Boost(rule_id=1, name="b", product_ids=frozenset({2}), factor=2.0)([item(1), item(2)])

    out = apply_positional(boosted, [Pin(rule_id=2, name="p", product_ids=(2,), position=1)], k=2)

    assert out[0].rule_reasons == (
        "pinned at position 1 by rule “p”",
        "boosted \u00d72 by rule “b”",
    )
    assert out[0].rule_ids == (1, 2)


def test_a_pin_position_below_one_is_refused():
    with pytest.raises(ValueError, match="position: must be >= 1, got 0"):
        Pin(rule_id=1, name="p", product_ids=(1,), position=0)


# Promotion slots --------------------------------------------------------------------------------


def test_promotion_slots_are_spread_from_the_top_and_rounded_half_up():
    promo = PromotionSlots(rule_id=1, name="s", product_ids=(), share=0.2)

    assert (promo.slots(10), promo.positions(10)) == (2, [1, 6])
    assert (promo.slots(5), promo.positions(5)) == (1, [1])
    assert PromotionSlots(rule_id=1, name="s", product_ids=(), share=0.25).slots(10) == 3
    assert PromotionSlots(rule_id=1, name="s", product_ids=(), share=0.01).slots(10) == 1
    assert PromotionSlots(rule_id=1, name="s", product_ids=(), share=1.0).positions(3) == [
        1,
        2,
        3,
    ]


def test_promoted_products_fill_the_slots_listed_first_then_head_then_the_rest():
    given = [item(p) for p in range(1, 11)]
    pool = {20: item(20, 0.2), 21: item(21, 0.7)}
    promo = PromotionSlots(rule_id=3, name="Brand week", product_ids=(30, 20, 21, 8), share=0.3)

    out = apply_positional(given, [promo], k=10, pool=pool)

    # 3 slots at positions 1, 4 and 7: listed 8, then the head's best (21), then 20.
    assert pids(out) == [8, 1, 2, 21, 3, 4, 20, 5, 6, 7]
    assert [i.promoted for i in out] == [True, False, False, True, False, False, True] + [False] * 3
    assert out[0].rule_reasons == ("promoted by rule “Brand week”",)
    assert out[3].rule_ids == (3,)


def test_pins_keep_their_positions_and_the_promotion_takes_the_next_free_one():
    given = [item(p) for p in range(1, 6)]
    pin = Pin(rule_id=1, name="p", product_ids=(9,), position=1, priority=5)
    promo = PromotionSlots(rule_id=2, name="s", product_ids=(9, 7), share=0.2, priority=1)

    out = apply_positional(given, [promo, pin], k=5)

    assert pids(out) == [9, 7, 1, 2, 3]
    assert (out[0].promoted, out[1].promoted) == (False, True)


def test_a_promotion_without_products_leaves_the_list_alone():
    given = [item(1), item(2)]
    promo = PromotionSlots(rule_id=2, name="s", product_ids=(4,), share=0.5)

    assert apply_positional(given, [promo], k=2, blocked={4}) == given


def test_a_promotion_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="share: must be > 0 and <= 1, got 1.5"):
        PromotionSlots(rule_id=1, name="s", product_ids=(), share=1.5)
