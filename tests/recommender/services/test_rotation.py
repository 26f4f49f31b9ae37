"""Rotation on the serving path, on the shop of the service tests: what the log says a visitor
was shown, their interactions, the window, the bound on what is read, and lists of every kind."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recommender.models import Customer, Product, RecommendationLog
from recommender.selectors.recommendations import ROTATION_MAX_LISTS
from recommender.services.recommendations import (
    SessionEvent,
    bought_together,
    customer_recommendations,
    recommendation_config_save,
    session_recommendations,
    similar_products,
    trending_products,
)
from tests.recommender.shop import SHOP_CONFIG, add_event

pytestmark = pytest.mark.django_db

ON = {"rate": 0.5, "hours": 24, "min_impressions": 3}


def rotate(**lists):
    """Serve a configuration with these lists' rotation (none: rotation off)."""
    recommendation_config_save(config=SHOP_CONFIG.replace(rotation=lists))


def shown(products, *, hours_ago=1.0, times=1, kind="customer", customer=None, session=""):
    """``times`` lists of ``kind`` that showed ``products``, served ``hours_ago``."""
    at = timezone.now() - timedelta(hours=hours_ago)
    for _ in range(times):
        row = RecommendationLog.objects.create(
            kind=kind, customer=customer, session_id=session, product_ids=list(products)
        )
        RecommendationLog.objects.filter(pk=row.pk).update(created_at=at)


def scores(result):
    return {item.product.external_id: item.score for item in result.items}


def ranked(expected):
    """``expected`` ({product: score}) best first, as the served order must be."""
    return sorted(expected, key=lambda pid: -expected[pid])


def c4():
    return Customer.objects.get(external_id="C4")


def test_shown_3_times_without_a_click_is_demoted_by_the_rate_and_4_times_by_its_square(shop):
    # given: C4's list with rotation off, and the log: P shown 3 times, Q 2, R 4 (last 24 h)
    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p, q, r = list(base)[:3]
    shown([p, q, r], times=2, customer=c4())
    shown([p, r], hours_ago=3, customer=c4())
    shown([r], hours_ago=5, customer=c4())

    # when: rotation is on for customer lists (rate 0.5 from 3 impressions)
    rotate(customer=ON)
    result = customer_recommendations(customer=c4(), k=6, log=False)

    # then: P is halved, R quartered, Q (2 impressions) and the rest untouched, and the order
    # follows the new scores
    expected = {**base, p: base[p] * 0.5, r: base[r] * 0.25}
    assert scores(result) == pytest.approx(expected, abs=2e-6)
    assert [item.product.external_id for item in result.items] == ranked(expected)
    assert ranked(expected) != list(base)  # The demotion moved something.


def test_a_click_after_the_impressions_resets_the_count_and_one_before_does_not(shop):
    # given: P and Q shown 3 times, 2 to 4 hours ago; C4 clicked P an hour ago (after them) and
    # Q five hours ago (before them)
    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p, q = list(base)[:2]
    for hours in (2, 3, 4):
        shown([p, q], hours_ago=hours, customer=c4())
    now = timezone.now()
    add_event(c4(), p, event_type="click", at=now - timedelta(hours=1))
    add_event(c4(), q, event_type="click", at=now - timedelta(hours=5))
    clicked = scores(customer_recommendations(customer=c4(), k=6, log=False))

    rotate(customer=ON)
    after_clicks = scores(customer_recommendations(customer=c4(), k=6, log=False))
    # and: P shown once more since the click: 1 impression, still below 3
    shown([p], hours_ago=0.5, customer=c4())
    once_more = scores(customer_recommendations(customer=c4(), k=6, log=False))

    expected = {**clicked, q: clicked[q] * 0.5}
    assert after_clicks == pytest.approx(expected, abs=2e-6)
    assert once_more == pytest.approx(expected, abs=2e-6)


def test_rotation_is_off_by_default_and_then_reads_nothing_of_the_log(shop):
    base = customer_recommendations(customer=c4(), k=6, log=False)
    shown(list(scores(base)), times=5, customer=c4())

    for config in ({}, {"session": ON, "similar": ON}):  # Off for customer lists either way.
        rotate(**config)
        customer_recommendations(customer=c4(), k=6, log=False)  # The new version is loaded.
        with CaptureQueriesContext(connection) as queries:
            result = customer_recommendations(customer=c4(), k=6, log=False)

        assert scores(result) == scores(base)
        assert not [q for q in queries.captured_queries if "recommendationlog" in q["sql"]]
    assert SHOP_CONFIG.rotation == {}


def test_impressions_older_than_the_window_have_expired(shop):
    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p = next(iter(base))
    shown([p], hours_ago=1, customer=c4())
    shown([p], hours_ago=2, customer=c4())
    shown([p], hours_ago=25, customer=c4())

    rotate(customer=ON)
    within_24 = scores(customer_recommendations(customer=c4(), k=6, log=False))
    rotate(customer={**ON, "hours": 26})
    within_26 = scores(customer_recommendations(customer=c4(), k=6, log=False))

    assert within_24 == pytest.approx(base, abs=2e-6)
    assert within_26 == pytest.approx({**base, p: base[p] * 0.5}, abs=2e-6)


def test_only_the_newest_lists_are_read_and_only_the_visitors_own_of_that_kind(shop):
    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p, q, r = list(base)[:3]
    # P: shown 3 times, but older than the newest ROTATION_MAX_LISTS lists (which show Q once
    # each): the read stops before them.
    shown([p], hours_ago=10, times=3, customer=c4())
    shown([q], hours_ago=5, times=ROTATION_MAX_LISTS, customer=c4())
    # R: shown 3 times to someone else, and to C4 in similar lists and a session's lists.
    shown([r], times=3, customer=Customer.objects.get(external_id="C5"))
    shown([r], times=3, kind="similar", customer=c4())
    shown([r], times=3, kind="session", session="C4-session")

    rotate(customer=ON)
    with CaptureQueriesContext(connection) as queries:
        result = customer_recommendations(customer=c4(), k=6, log=False)

    # Q: 50 impressions, (1 - 0.5) ** 48.
    assert scores(result) == pytest.approx({**base, q: base[q] * 0.5**48}, abs=2e-6)
    reads = [q["sql"] for q in queries.captured_queries if "recommendationlog" in q["sql"]]
    assert len(reads) == 1
    assert reads[0].rstrip().endswith(f"LIMIT {ROTATION_MAX_LISTS}")


def test_served_lists_are_the_impressions_the_next_lists_rotate(shop):
    # given: rotation on; C4 is served 3 lists of 2 (logged, as the API serves them)
    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    rotate(customer=ON)
    first = [customer_recommendations(customer=c4(), k=2) for _ in range(3)]

    # when: the fourth list is served
    fourth = customer_recommendations(customer=c4(), k=2)

    # then: the first three showed the same two, which are now halved; the next two move up
    top_two = list(base)[:2]
    assert [[i.product.external_id for i in r.items] for r in first] == [top_two] * 3
    expected = {**base, **{pid: base[pid] * 0.5 for pid in top_two}}
    assert [item.product.external_id for item in fourth.items] == ranked(expected)[:2]


def test_a_session_list_rotates_by_its_session_id(shop):
    ink = Product.objects.get(external_id="INK-1")
    events = [SessionEvent(product=ink)]
    base = scores(session_recommendations(events=events, k=5, log=False))
    p = next(iter(base))
    shown([p], times=3, kind="session", session="S1")

    rotate(session=ON)
    mine = scores(session_recommendations(events=events, k=5, log=False, session_id="S1"))
    other = scores(session_recommendations(events=events, k=5, log=False, session_id="S2"))
    anonymous = scores(session_recommendations(events=events, k=5, log=False))

    assert mine == pytest.approx({**base, p: base[p] * 0.5}, abs=2e-6)
    assert other == anonymous == base


@pytest.mark.parametrize("kind", ["similar", "bought_together", "trending"])
def test_a_product_list_rotates_for_its_customer_or_session_and_a_click_resets(shop, kind):
    ink = Product.objects.get(external_id="INK-1")
    serve = {
        "similar": lambda **kw: similar_products(product=ink, k=4, mode="hybrid", **kw),
        "bought_together": lambda **kw: bought_together(product=ink, k=4, **kw),
        "trending": lambda **kw: trending_products(k=4, **kw),
    }[kind]
    base = scores(serve(log=False))
    p = next(iter(base))
    shown([p], times=3, kind=kind, customer=c4())
    shown([p], times=3, kind=kind, session="S1")
    shown([p], times=3, kind="customer", customer=Customer.objects.get(external_id="C5"))

    rotate(**{kind: ON})
    for_c4 = scores(serve(log=False, customer=c4()))
    for_s1 = scores(serve(log=False, session_id="S1"))
    # C5 was shown P 3 times in customer lists, not in this kind of list.
    for_c5 = scores(serve(log=False, customer=Customer.objects.get(external_id="C5")))
    add_event(c4(), p, event_type="click", at=timezone.now())
    after_click = scores(serve(log=False, customer=c4()))

    assert len(base) >= 2
    assert for_c4 == pytest.approx({**base, p: base[p] * 0.5}, abs=2e-6)
    assert for_s1 == pytest.approx({**base, p: base[p] * 0.5}, abs=2e-6)
    assert for_c5 == after_click == base


def test_a_product_list_logs_the_visitor_it_names(shop):
    ink = Product.objects.get(external_id="INK-1")

    similar_products(product=ink, k=2, customer=c4(), session_id="S9")
    bought_together(product=ink, k=2, session_id="S9")
    trending_products(k=2)

    rows = RecommendationLog.objects.order_by("id").values_list(
        "kind", "customer__external_id", "session_id"
    )
    assert list(rows) == [
        ("similar", "C4", "S9"), ("bought_together", None, "S9"), ("trending", None, ""),
    ]  # fmt: skip


def test_a_list_dated_in_the_past_counts_only_the_lists_served_before_it(shop):
    from recommender.services.recommendations.rotation import rotation_demotion
    from recommender.services.recommendations.serving import serving_engine

    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p = next(iter(base))
    shown([p], hours_ago=50, times=3, customer=c4())
    shown([p], hours_ago=2, times=3, customer=c4())
    rotate(customer=ON)
    serving = serving_engine()

    def factors(hours_ago):
        demotion = rotation_demotion(
            serving=serving, kind="customer", customer=c4(),
            now=timezone.now() - timedelta(hours=hours_ago),
        )  # fmt: skip
        return {} if demotion is None else dict(demotion.factors)

    pk = Product.objects.get(external_id=p).pk
    # 49 hours ago: the 3 lists of 50 hours ago; 20 hours ago: those were older than 24 hours
    # and the 3 of 2 hours ago not served yet; now: those 3.
    assert (factors(49), factors(20), factors(0)) == ({pk: 0.5}, {}, {pk: 0.5})


def test_replayed_lists_and_real_ones_never_rotate_each_other(shop):
    # given: P shown 3 times by the replay simulator (replayed rows) and Q 3 times for real
    from recommender.services.recommendations.rotation import rotation_demotion
    from recommender.services.recommendations.serving import serving_engine

    base = scores(customer_recommendations(customer=c4(), k=6, log=False))
    p, q = list(base)[:2]
    shown([p], times=3, customer=c4())
    RecommendationLog.objects.filter(customer=c4()).update(replayed=True)
    shown([q], times=3, customer=c4())
    rotate(customer=ON)
    serving = serving_engine()

    def factors(replayed):
        demotion = rotation_demotion(
            serving=serving, kind="customer", customer=c4(), replayed=replayed
        )
        return {} if demotion is None else dict(demotion.factors)

    # then: real traffic demotes Q only, the replay P only
    pk = {e: Product.objects.get(external_id=e).pk for e in (p, q)}
    assert factors(False) == {pk[q]: 0.5}
    assert factors(True) == {pk[p]: 0.5}
