"""The customer and their newest events in one read (one statement on PostgreSQL), as every
served customer list starts: the same customer as ``customer_get``, the same events as
``customer_recent_events``, newest first."""

from datetime import UTC, datetime, timedelta

import pytest

from recommender.models import Customer, Event, Product
from recommender.selectors.recommendations import customer_with_history

START = datetime(2026, 3, 1, tzinfo=UTC)


def _seconds(*minutes):
    """Epoch seconds of START + each of ``minutes`` (SQLite computes them from a Julian day
    number, within a millisecond)."""
    return [pytest.approx((START + timedelta(minutes=m)).timestamp(), abs=1e-3) for m in minutes]


def _event(customer, i, *, product=None, kind="view", query=""):
    return Event(
        event_id=f"{customer.external_id}-e{i}",
        customer=customer,
        product=product,
        event_type=kind,
        occurred_at=START + timedelta(minutes=i),
        search_query=query,
    )


@pytest.mark.django_db
def test_the_customer_comes_with_their_events_newest_first():
    # given: a customer with views, a purchase and a search, and another customer's events
    made = Customer.objects.create(external_id="C-1", attributes={"tier": "gold"})
    mug, cup = (Product.objects.create(external_id=x, title=x) for x in ("mug", "cup"))
    other = Customer.objects.create(external_id="C-10")
    Event.objects.bulk_create(
        [
            _event(made, 0, product=mug),
            _event(made, 1, kind="search", query="blue cups"),
            _event(made, 2, product=cup, kind="purchase"),
            _event(other, 3, product=mug),
        ]
    )

    # when
    found = customer_with_history(external_id="C-1")

    # then: the customer's fields as stored, and their three events, the newest first
    assert found is not None
    customer, events = found
    assert (customer.pk, customer.external_id, customer.attributes) == (
        made.pk,
        "C-1",
        {"tier": "gold"},
    )
    assert (customer.created_at, customer.updated_at) == (made.created_at, made.updated_at)
    assert [(pid, kind, query) for pid, kind, _, query in events] == [
        (cup.pk, "purchase", ""),
        (None, "search", "blue cups"),
        (mug.pk, "view", ""),
    ]
    assert [at for _, _, at, _ in events] == _seconds(2, 1, 0)
    # nothing of the read is left on the instance
    assert not {"products", "kinds", "stamps", "queries"} & set(vars(customer))


@pytest.mark.django_db
def test_the_newest_events_up_to_the_limit():
    customer = Customer.objects.create(external_id="C-2")
    mug = Product.objects.create(external_id="mug", title="Mug")
    Event.objects.bulk_create(_event(customer, i, product=mug) for i in range(5))

    found = customer_with_history(external_id="C-2", limit=2)

    assert found is not None
    _, events = found

    assert [at for _, _, at, _ in events] == _seconds(4, 3)


@pytest.mark.django_db
def test_a_customer_without_events_has_an_empty_history_and_an_unknown_one_is_none():
    made = Customer.objects.create(external_id="C-3")

    assert customer_with_history(external_id="C-3") == (made, [])
    assert customer_with_history(external_id="C-") is None
    assert customer_with_history(external_id="nobody") is None


@pytest.mark.django_db
def test_with_pseudonymous_ids_the_shops_id_and_the_pseudonym_both_find_the_customer(
    pseudonym_of_c9,
):
    stored = pseudonym_of_c9
    assert stored != "C-9"
    made = Customer.objects.create(external_id=stored)
    mug = Product.objects.create(external_id="mug", title="Mug")
    Event.objects.create(
        event_id="e1", customer=made, product=mug, event_type="view", occurred_at=START
    )

    expected = (made, [(mug.pk, "view", *_seconds(0), "")])
    assert customer_with_history(external_id="C-9") == expected
    assert customer_with_history(external_id=stored) == expected
