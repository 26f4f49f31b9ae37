"""``products_active``: the recommendation lists' check that a product may be served, with its
rows cached per process by ``updated_at``."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.models import Product
from recommender.selectors import catalog
from recommender.selectors.catalog import products_active


@pytest.fixture(autouse=True)
def _empty_cache():
    catalog._products.clear()
    yield
    catalog._products.clear()


@pytest.mark.django_db
def test_only_active_products_come_back_by_pk():
    # given: two active products and an inactive one
    mug = Product.objects.create(external_id="p1", title="Mug")
    cup = Product.objects.create(external_id="p2", title="Cup")
    gone = Product.objects.create(external_id="p3", title="Old", is_active=False)

    # when
    found = products_active(ids=[mug.pk, gone.pk, cup.pk, 999_999])

    # then
    assert {pk: p.external_id for pk, p in found.items()} == {mug.pk: "p1", cup.pk: "p2"}
    assert products_active(ids=[]) == {}


@pytest.mark.django_db
def test_a_seen_product_costs_one_light_query_and_a_change_is_read_at_once():
    # given: a product read once (cached)
    mug = Product.objects.create(external_id="p1", title="Mug")
    products_active(ids=[mug.pk])

    # when: read again
    with CaptureQueriesContext(connection) as queries:
        again = products_active(ids=[mug.pk])

    # then: one query, the same row
    assert len(queries) == 1
    assert again[mug.pk].title == "Mug"

    # when: the product changes (auto_now moves updated_at), then is deactivated
    mug.title = "Big mug"
    mug.save()
    changed = products_active(ids=[mug.pk])
    Product.objects.filter(pk=mug.pk).update(is_active=False)

    # then: the change is served at once, and the deactivation too
    assert changed[mug.pk].title == "Big mug"
    assert products_active(ids=[mug.pk]) == {}
