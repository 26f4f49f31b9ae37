"""Tagging's v1 API: vocabulary, product tags, suggestions and decisions, interests, the job."""

from datetime import UTC, datetime

import pytest

from jobs.choices import JobState
from jobs.models import Job
from recommender.models import Customer, Event, Product
from tagging.models import ProductTag, Tag, TaggingJobKind
from tagging.services import product_tags_decide, tagging_run


def _row(product_id: str, tag: str) -> ProductTag:
    return ProductTag.objects.get(product__external_id=product_id, tag__name=tag)


def test_listing_tags_gives_names_parents_and_counts(catalogue, read_client):
    tagging_run()

    body = read_client.get("/api/v1/tags/").json()

    assert body["count"] == 6
    by_name = {t["name"]: t for t in body["results"]}
    assert by_name["dairy/yogurt"]["parent"] == "dairy"
    assert by_name["dairy"]["parent"] is None
    assert (
        by_name["dairy/yogurt"]["pending_count"],
        by_name["dairy/yogurt"]["accepted_count"],
    ) == (
        2,
        0,
    )


def test_a_merchandiser_creates_a_tag_with_its_parent(merchandiser_client):
    response = merchandiser_client.post(
        "/api/v1/tags/", {"name": "garden/tools", "description": "Spades."}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["parent"] == "garden"
    assert Tag.objects.get(name="garden/tools").description == "Spades."


def test_creating_a_duplicate_tag_answers_409_naming_the_field(ingest_client):
    ingest_client.post("/api/v1/tags/", {"name": "mugs"}, format="json")

    response = ingest_client.post("/api/v1/tags/", {"name": "mugs"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "name: a tag named 'mugs' already exists",
        "errors": [{"field": "name", "message": "a tag named 'mugs' already exists"}],
    }


def test_a_read_token_cannot_create_tags(read_client):
    response = read_client.post("/api/v1/tags/", {"name": "mugs"}, format="json")

    assert response.status_code == 403
    assert Tag.objects.count() == 0


def test_product_tags_list_accepted_then_pending_then_rejected(catalogue, read_client):
    tagging_run(threshold=0.0, top_k=3)
    teapots, mugs = _row("p-tea-1", "kitchen/teapots"), _row("p-tea-1", "kitchen/mugs")
    product_tags_decide(ids=[teapots.pk], status="accepted")
    product_tags_decide(ids=[mugs.pk], status="rejected")

    response = read_client.get("/api/v1/products/p-tea-1/tags")

    assert response.status_code == 200
    rows = [(t["tag"], t["status"], t["source"]) for t in response.json()]
    assert rows[:2] == [
        ("kitchen/teapots", "accepted", "zero_shot"),
        ("kitchen", "accepted", "merchant"),
    ]
    assert [r[1:] for r in rows[2:]] == [("pending", "zero_shot"), ("rejected", "zero_shot")]
    assert rows[3][0] == "kitchen/mugs"


def test_product_tags_of_an_unknown_product_answer_404(read_client):
    response = read_client.get("/api/v1/products/nope/tags")

    assert response.status_code == 404
    assert response.json() == {"detail": "Product 'nope' not found."}


def test_a_product_whose_id_is_tags_still_reaches_the_product_route(read_client):
    Product.objects.create(external_id="tags", title="A product called tags")

    assert read_client.get("/api/v1/products/tags/").json()["product_id"] == "tags"
    assert read_client.get("/api/v1/products/tags/tags").json() == []


def test_suggestions_come_most_confident_first_and_filter_by_tag(catalogue, read_client):
    tagging_run()

    body = read_client.get("/api/v1/tags/suggestions", {"tag": "dairy/yogurt"}).json()

    assert [(r["product_id"], r["tag"]) for r in body["results"]] == [
        ("p-yog-1", "dairy/yogurt"),
        ("p-yog-2", "dairy/yogurt"),
    ]
    assert body["results"][0]["confidence"] > body["results"][1]["confidence"]


def test_suggestions_of_an_unknown_tag_answer_422(read_client):
    response = read_client.get("/api/v1/tags/suggestions", {"tag": "nope"})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "tag", "message": "no such tag"}]


def test_a_merchandiser_accepts_suggestions_in_bulk(catalogue, merchandiser_client, merchandiser):
    tagging_run()
    ids = [_row("p-yog-1", "dairy/yogurt").pk, _row("p-yog-2", "dairy/yogurt").pk]

    response = merchandiser_client.post(
        "/api/v1/tags/suggestions/decide", {"ids": ids, "decision": "accepted"}, format="json"
    )

    assert response.json() == {"decided": 2, "decision": "accepted"}
    assert list(ProductTag.objects.filter(pk__in=ids).values_list("status", "decided_by")) == [
        ("accepted", merchandiser.pk),
        ("accepted", merchandiser.pk),
    ]


def test_a_read_token_cannot_decide_suggestions(catalogue, read_client):
    tagging_run()
    row = _row("p-yog-1", "dairy/yogurt")

    response = read_client.post(
        "/api/v1/tags/suggestions/decide", {"ids": [row.pk], "decision": "accepted"}, format="json"
    )

    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == "pending"


_MIN_ONE = "Ensure this field has at least 1 elements."


@pytest.mark.parametrize(
    ("body", "status", "errors"),
    [
        ({"ids": [], "decision": "accepted"}, 400, [{"field": "ids", "message": _MIN_ONE}]),
        (
            {"ids": [1], "decision": "maybe"},
            400,
            [{"field": "decision", "message": '"maybe" is not a valid choice.'}],
        ),
        (
            {"ids": ["1"], "decision": "accepted"},
            400,
            [{"field": "ids", "message": "item 0: expected an integer, got string"}],
        ),
        (
            {"ids": [424242], "decision": "rejected"},
            422,
            [{"field": "ids", "message": "no product tag with id 424242"}],
        ),
    ],
)
def test_bad_decisions_are_refused_naming_the_field(merchandiser_client, body, status, errors):
    response = merchandiser_client.post("/api/v1/tags/suggestions/decide", body, format="json")

    assert response.status_code == status
    assert response.json()["errors"] == errors


def test_customer_interests_name_the_top_tags(catalogue, read_client):
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

    response = read_client.get("/api/v1/customers/c1/interests", {"k": 1})

    assert response.json() == {
        "customer_id": "c1",
        "interests": [{"tag": "kitchen", "weight": 1.0, "events": 1}],
    }


def test_interests_of_an_unknown_customer_answer_404(read_client):
    response = read_client.get("/api/v1/customers/nobody/interests")

    assert response.status_code == 404
    assert response.json() == {"detail": "Customer 'nobody' not found."}


def test_an_admin_triggers_tagging_and_the_job_runs(
    catalogue, admin_client_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_api.post("/api/v1/jobs/tag", {"top_k": 1}, format="json")

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.state, job.params) == (
        TaggingJobKind.TAG,
        JobState.SUCCEEDED,
        {"only_new": False, "threshold": 0.3, "top_k": 1},
    )
    assert job.counts["tag"]["suggested"] == 8


def test_a_merchandiser_cannot_trigger_tagging(merchandiser_client):
    response = merchandiser_client.post("/api/v1/jobs/tag", {}, format="json")

    assert response.status_code == 403
    assert Job.objects.count() == 0
