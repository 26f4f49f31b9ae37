"""Relationships: the row parser, idempotent batches (service and API), bad rows by line, and
the right to be forgotten removing a customer's edges in both directions."""

from datetime import UTC, datetime

import pytest

from recommender.ingestion.records import RowError
from recommender.models import Customer
from recommender.services.ingestion import customer_forget
from social.models import Relationship
from social.records import parse_relationship
from social.services import relationships_upsert

NOW = datetime(2024, 6, 1, tzinfo=UTC)
BATCH = "/api/v1/relationships/batch"


def _parse(**raw):
    return parse_relationship(raw, now=NOW)


def _edges():
    return sorted(
        (r.source.external_id, r.target.external_id, r.type, r.weight)
        for r in Relationship.objects.select_related("source", "target")
    )


# The parser ------------------------------------------------------------------------------------


def test_a_friendship_is_two_edges_and_weight_defaults_to_one():
    record = _parse(customer_id="A", target_customer_id="B", type="friend")
    assert record.weight == 1.0
    assert record.created_at == NOW
    assert record.edges() == [("A", "B"), ("B", "A")]
    assert _parse(customer_id="A", target_customer_id="B", type="follows").edges() == [("A", "B")]


def test_bad_rows_name_every_field():
    with pytest.raises(RowError) as caught:
        _parse(customer_id="A", target_customer_id="A", type="likes", weight=0, colour="red")
    assert [(e.field, e.message, e.rule) for e in caught.value.errors] == [
        ("colour", "unknown field", False),
        ("type", "unknown type 'likes'; expected one of "
                 "['follows', 'trusts', 'friend', 'referred_by']", False),
        ("target_customer_id", "a customer cannot have a relationship with themself", True),
        ("weight", "expected a number > 0 and <= 1e+06, got 0", True),
    ]  # fmt: skip


def test_csv_text_is_converted_and_json_types_are_required():
    csv_row = parse_relationship(
        {"customer_id": "A", "target_customer_id": "B", "type": "trusts", "weight": " 2.5 "},
        now=NOW, typed=False,
    )  # fmt: skip
    assert csv_row.weight == 2.5
    with pytest.raises(RowError) as caught:
        _parse(customer_id="A", target_customer_id="B", type="trusts", weight="2.5")
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("weight", "expected a number, got string")
    ]


# The service -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_upsert_is_idempotent_and_creates_customers_on_first_sight():
    Customer.objects.create(external_id="A")
    records = [
        _parse(customer_id="A", target_customer_id="B", type="friend"),
        _parse(customer_id="A", target_customer_id="C", type="follows", weight=2.0),
        _parse(customer_id="C", target_customer_id="A", type="referred_by"),
    ]
    first = relationships_upsert(records=records)
    assert (first.created, first.updated, first.unchanged, first.customers_created) == (4, 0, 0, 2)
    again = relationships_upsert(records=records)
    assert (again.created, again.updated, again.unchanged, again.customers_created) == (0, 0, 4, 0)
    changed = relationships_upsert(
        records=[_parse(customer_id="A", target_customer_id="C", type="follows", weight=3.0)]
    )
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    assert _edges() == [
        ("A", "B", "friend", 1.0),
        ("A", "C", "follows", 3.0),
        ("B", "A", "friend", 1.0),
        ("C", "A", "referred_by", 1.0),
    ]


@pytest.mark.django_db
def test_an_edge_repeated_in_one_call_is_written_once_the_last_wins():
    counts = relationships_upsert(
        records=[
            _parse(customer_id="A", target_customer_id="B", type="trusts", weight=1.0),
            _parse(customer_id="A", target_customer_id="B", type="trusts", weight=4.0),
        ]
    )
    assert (counts.created, counts.duplicates) == (1, 1)
    assert _edges() == [("A", "B", "trusts", 4.0)]


@pytest.mark.django_db
def test_forgetting_a_customer_removes_their_edges_in_both_directions():
    relationships_upsert(
        records=[
            _parse(customer_id="A", target_customer_id="B", type="follows"),
            _parse(customer_id="C", target_customer_id="A", type="trusts"),
            _parse(customer_id="B", target_customer_id="C", type="friend"),
        ]
    )
    customer_forget(customer=Customer.objects.get(external_id="A"))
    assert _edges() == [("B", "C", "friend", 1.0), ("C", "B", "friend", 1.0)]
    assert not Customer.objects.filter(external_id="A").exists()


# The batch API ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_batch_api_creates_then_a_replay_changes_nothing(ingest_client):
    body = {"items": [
        {"customer_id": "A", "target_customer_id": "B", "type": "friend"},
        {"customer_id": "A", "target_customer_id": "C", "type": "trusts", "weight": 0.5,
         "created_at": "2024-05-01T10:00:00Z"},
    ]}  # fmt: skip
    first = ingest_client.post(BATCH, body, format="json")
    assert first.status_code == 200
    assert first.json() == {"created": 3, "updated": 0, "unchanged": 0, "duplicates": 0,
                            "customers_created": 3}  # fmt: skip
    again = ingest_client.post(BATCH, body, format="json")
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 3, "duplicates": 0,
                            "customers_created": 0}  # fmt: skip
    edge = Relationship.objects.get(type="trusts")
    assert edge.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert edge.weight == 0.5


@pytest.mark.django_db
def test_batch_api_refuses_a_bad_batch_naming_each_item_and_writes_nothing(ingest_client):
    body = {"items": [
        {"customer_id": "A", "target_customer_id": "B", "type": "follows"},
        {"customer_id": "A", "target_customer_id": "B", "type": "enemies"},
    ]}  # fmt: skip
    response = ingest_client.post(BATCH, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "field": "type", "message": "unknown type 'enemies'; expected one of "
                                                 "['follows', 'trusts', 'friend', 'referred_by']"}
    ]  # fmt: skip
    assert Relationship.objects.count() == 0
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_batch_api_answers_422_for_a_rule(ingest_client):
    body = {"items": [{"customer_id": "A", "target_customer_id": "A", "type": "follows"}]}
    response = ingest_client.post(BATCH, body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 0, "field": "target_customer_id",
         "message": "a customer cannot have a relationship with themself"}
    ]  # fmt: skip


@pytest.mark.django_db
def test_batch_api_needs_the_ingest_scope(read_client):
    body = {"items": [{"customer_id": "A", "target_customer_id": "B", "type": "follows"}]}
    assert read_client.post(BATCH, body, format="json").status_code == 403
    assert Relationship.objects.count() == 0


def test_created_at_is_optional_but_never_null_in_json():
    assert _parse(customer_id="A", target_customer_id="B", type="follows").created_at == NOW
    with pytest.raises(RowError) as caught:
        _parse(customer_id="A", target_customer_id="B", type="follows", created_at=None)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("created_at", "expected a string, got null")
    ]
    csv_row = parse_relationship(
        {"customer_id": "A", "target_customer_id": "B", "type": "follows", "created_at": ""},
        now=NOW,
        typed=False,
    )
    assert csv_row.created_at == NOW


# Privacy: the export and the forget check see relationships ----------------------------------


@pytest.mark.django_db
def test_the_access_export_lists_the_customer_s_edges_in_both_directions(admin_client_api):
    relationships_upsert(
        records=[
            _parse(customer_id="A", target_customer_id="B", type="follows", weight=2),
            _parse(customer_id="C", target_customer_id="A", type="trusts"),
            _parse(customer_id="B", target_customer_id="C", type="follows"),
        ]
    )

    body = admin_client_api.get("/api/v1/customers/A/export").json()

    assert body["relationships"] == [
        {"source": "A", "target": "B", "type": "follows", "weight": 2.0,
         "created_at": "2024-06-01T00:00:00+00:00"},
        {"source": "C", "target": "A", "type": "trusts", "weight": 1.0,
         "created_at": "2024-06-01T00:00:00+00:00"},
    ]  # fmt: skip


@pytest.mark.django_db
def test_the_forget_check_names_edges_left_behind_and_the_purge_removes_them():
    from privacy.models import ForgetRequest
    from social.privacy import relationships_check, relationships_purge

    relationships_upsert(records=[_parse(customer_id="A", target_customer_id="B", type="follows")])
    # What the purge job passes: the request, naming the forgotten customer's primary key.
    request = ForgetRequest(customer_pk=Customer.objects.get(external_id="A").pk)

    assert relationships_check(request) == ["1 relationship rows"]
    assert relationships_purge(request) == {"relationships_deleted": 1}
    assert relationships_check(request) == []
