"""Tagging's dashboard pages and fragments, through Django's test client."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from recommender.models import Customer, Event, Product
from tagging.models import ProductTag, Tag
from tagging.services import product_tags_decide, tagging_run


@pytest.fixture
def merch_web(merchandiser) -> Client:
    client = Client()
    client.force_login(merchandiser)
    return client


def _row(product_id: str, tag: str) -> ProductTag:
    return ProductTag.objects.get(product__external_id=product_id, tag__name=tag)


def test_the_review_queue_needs_a_login(client):
    response = client.get("/dashboard/tags/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/tags/"


def test_the_review_queue_lists_pending_suggestions_most_confident_first(catalogue, merch_web):
    tagging_run()

    response = merch_web.get("/dashboard/tags/")

    assert response.status_code == 200
    rows = list(response.context["page"].object_list)
    assert len(rows) == 8
    assert [r.confidence for r in rows] == sorted((r.confidence for r in rows), reverse=True)
    assert b"Greek yogurt natural" in response.content
    assert response.context["totals"] == {"pending": 8, "reviewed": 0, "precision": None}


def test_the_review_queue_filters_by_tag_and_status(catalogue, merch_web):
    tagging_run()
    product_tags_decide(ids=[_row("p-yog-1", "dairy/yogurt").pk], status="accepted")

    response = merch_web.get("/dashboard/tags/", {"tag": "dairy/yogurt", "status": "accepted"})

    assert [(r.product.external_id, r.status) for r in response.context["page"].object_list] == [
        ("p-yog-1", "accepted")
    ]


def test_bulk_accept_decides_the_ticked_rows_only(catalogue, merch_web, merchandiser):
    tagging_run()
    ticked = [_row("p-yog-1", "dairy/yogurt").pk, _row("p-yog-2", "dairy/yogurt").pk]

    response = merch_web.post(
        "/dashboard/tags/?tag=&status=pending", {"ids": ticked, "decision": "accepted"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/tags/?tag=&status=pending"
    assert sorted(ProductTag.objects.filter(decided_by=merchandiser).values_list("pk", flat=True))[
        :2
    ] == sorted(ticked)
    assert _row("p-che-1", "dairy/cheese").status == "pending"
    page = merch_web.get(response["Location"])
    assert [str(m) for m in page.context["messages"]] == ["2 suggestions accepted."]
    assert page.context["totals"] == {"pending": 6, "reviewed": 2, "precision": 1.0}


def test_a_decision_with_nothing_ticked_shows_the_error_and_decides_nothing(catalogue, merch_web):
    tagging_run()

    response = merch_web.post("/dashboard/tags/", {"decision": "rejected"})

    assert response.status_code == 200
    assert response.context["decision"].errors == {"ids": ["Tick at least one suggestion."]}
    assert ProductTag.objects.exclude(status="pending").count() == 0


def test_creating_a_tag_in_the_vocabulary_page(merch_web):
    response = merch_web.post(
        "/dashboard/tags/vocabulary/",
        {"action": "create", "name": "garden/tools", "description": "Spades and rakes."},
    )

    assert response.status_code == 302
    parent = Tag.objects.get(name="garden/tools").parent
    assert parent is not None
    assert parent.name == "garden"


def test_a_duplicate_tag_shows_the_error_next_to_the_name_and_saves_nothing(merch_web):
    Tag.objects.create(name="mugs")

    response = merch_web.post("/dashboard/tags/vocabulary/", {"action": "create", "name": " mugs "})

    assert response.status_code == 200
    assert response.context["create"].errors == {"name": ["A tag named “mugs” already exists."]}
    assert Tag.objects.count() == 1
    assert b'class="field has-error"' in response.content


def test_importing_tags_from_the_category_column(db, merch_web):
    Product.objects.create(external_id="a", title="Yogurt", category="dairy eggs/yogurt")

    response = merch_web.post(
        "/dashboard/tags/vocabulary/", {"action": "import", "column": "category"}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [
        "1 distinct values: 2 tags created, 0 product tags written."
    ]
    assert [t.name for t in response.context["page"].object_list] == [
        "dairy eggs",
        "dairy eggs/yogurt",
    ]


def test_the_product_tags_fragment_lists_the_tags(catalogue, merch_web):
    tagging_run()

    response = merch_web.get("/dashboard/tags/fragments/products/p-mug-1/tags")

    assert response.status_code == 200
    assert [(r.tag.name, r.status) for r in response.context["rows"]] == [
        ("kitchen/mugs", "pending")
    ]
    assert b"<html" not in response.content


def test_the_fragments_answer_200_for_unknown_ids(db, merch_web):
    product = merch_web.get("/dashboard/tags/fragments/products/nope/tags")
    customer = merch_web.get("/dashboard/tags/fragments/customers/nobody/interests")

    assert (product.status_code, customer.status_code) == (200, 200)
    assert "No product “nope”." in product.content.decode()
    assert "No customer “nobody”." in customer.content.decode()


def test_the_customer_interests_fragment_shows_shares(catalogue, merch_web):
    tagging_run()
    product_tags_decide(ids=[_row("p-mug-1", "kitchen/mugs").pk], status="accepted")
    customer = Customer.objects.create(external_id="c1")
    Event.objects.create(
        event_id="e1",
        customer=customer,
        product=Product.objects.get(external_id="p-mug-1"),
        event_type="purchase",
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
    )

    response = merch_web.get("/dashboard/tags/fragments/customers/c1/interests")

    assert [(i.tag, i.weight) for i in response.context["interests"]] == [
        ("kitchen", 1.0),
        ("kitchen/mugs", 1.0),
    ]
    assert '<td>kitchen/mugs</td><td class="num">100%</td>' in response.content.decode()
