"""GET products, customers, events and jobs; DELETE customers (the right to be forgotten)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.choices import JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import Customer, Event, Product

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _ids(response, key: str) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row[key] for row in response.json()["results"]]


@pytest.fixture
def products(db):
    rows = [
        Product(external_id="A", title="Lego bricks", category="Toys", brand="Lego"),
        Product(external_id="B", title="Doll", category="Toys", brand="Acme", is_active=False),
        Product(
            external_id="C",
            title="History of toys",
            description="Includes a chapter on LEGO.",
            category="Books",
            brand="Acme",
        ),
        Product(external_id="D", title="Atlas", category="Books", brand="Maps Ltd"),
    ]
    Product.objects.bulk_create(rows)
    # updated_at is auto_now: set exact moments through a queryset update.
    for hour, external_id in enumerate("ABCD"):
        Product.objects.filter(external_id=external_id).update(updated_at=T0.replace(hour=hour + 1))
    return {p.external_id: p for p in Product.objects.all()}


@pytest.fixture
def timeline(products):
    """Two customers and six events an hour apart, oldest first: e-1 … e-6."""
    ana = Customer.objects.create(external_id="ana")
    bob = Customer.objects.create(external_id="bob")
    spec = [
        ("e-1", ana, "A", "view", "s1"),
        ("e-2", ana, "A", "add_to_cart", "s1"),
        ("e-3", ana, "A", "purchase", "s1"),
        ("e-4", bob, "C", "view", "s2"),
        ("e-5", bob, None, "search", "s2"),
        ("e-6", ana, "D", "view", "s3"),
    ]
    Event.objects.bulk_create(
        Event(
            event_id=event_id,
            customer=customer,
            product=products[product] if product else None,
            event_type=event_type,
            occurred_at=T0.replace(hour=n),
            session_id=session,
            search_query="lego" if event_type == "search" else "",
        )
        for n, (event_id, customer, product, event_type, session) in enumerate(spec, start=1)
    )
    return {"ana": ana, "bob": bob}


# Products --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["A", "B", "C", "D"]),
        ("category=Toys", ["A", "B"]),
        ("brand=Acme", ["B", "C"]),
        ("is_active=false", ["B"]),
        ("is_active=true&category=Books", ["C", "D"]),
        ("q=lego", ["A", "C"]),
        ("q=ATLAS", ["D"]),
        ("updated_since=2024-05-01T03:00:00Z", ["C", "D"]),
        ("updated_since=2024-05-01T04:30:00%2B01:00", ["D"]),  # 03:30 UTC
        ("category=Garden", []),
    ],
)
def test_product_list_filters(read_client, products, query, expected):
    response = read_client.get(f"/api/v1/products/?{query}")
    assert _ids(response, "product_id") == expected
    assert response.json()["count"] == len(expected)


def test_product_list_paginates_by_limit_and_offset(read_client, products):
    response = read_client.get("/api/v1/products/?limit=2&offset=1")
    body = response.json()
    assert _ids(response, "product_id") == ["B", "C"]
    assert body["count"] == 4
    assert body["next"] == "http://testserver/api/v1/products/?limit=2&offset=3"
    assert body["previous"] == "http://testserver/api/v1/products/?limit=2"


def test_product_detail_shows_every_field(read_client, products):
    Product.objects.filter(external_id="A").update(
        description="Classic",
        price=Decimal("19.90"),
        tags=["kids"],
        attributes={"pieces": 500},
        created_at=T0,
    )
    response = read_client.get("/api/v1/products/A/")
    assert response.status_code == 200
    assert response.json() == {
        "product_id": "A",
        "title": "Lego bricks",
        "description": "Classic",
        "category": "Toys",
        "brand": "Lego",
        "price": "19.90",
        "tags": ["kids"],
        "attributes": {"pieces": 500},
        "is_active": True,
        "created_at": "2024-05-01T12:00:00Z",
        "updated_at": "2024-05-01T01:00:00Z",
    }


def test_unknown_product_is_404(read_client, products):
    response = read_client.get("/api/v1/products/ZZ/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Product 'ZZ' not found."}


@pytest.mark.parametrize(
    ("url", "field", "message"),
    [
        ("/api/v1/products/?limit=abc", "limit", "expected a whole number, got 'abc'"),
        ("/api/v1/products/?limit=0", "limit", "must be at least 1, got 0"),
        ("/api/v1/products/?limit=%205", "limit", "expected a whole number, got ' 5'"),
        ("/api/v1/products/?offset=-1", "offset", "must be at least 0, got -1"),
        (
            "/api/v1/products/?offset=2147483648",
            "offset",
            "must be at most 2147483647, got 2147483648",
        ),
        ("/api/v1/products/?is_active=maybe", "is_active", "expected true or false, got 'maybe'"),
        ("/api/v1/products/?is_active=1", "is_active", "expected true or false, got '1'"),
        (
            "/api/v1/products/?updated_since=notadate",
            "updated_since",
            "not an ISO 8601 timestamp: 'notadate'",
        ),
        (
            "/api/v1/customers/?created_since=2024-13-01",
            "created_since",
            "not an ISO 8601 timestamp: '2024-13-01'",
        ),
        ("/api/v1/events/?since=notadate", "since", "not an ISO 8601 timestamp: 'notadate'"),
        ("/api/v1/events/?until=tomorrow", "until", "not an ISO 8601 timestamp: 'tomorrow'"),
        ("/api/v1/events/?limit=many", "limit", "expected a whole number, got 'many'"),
    ],
)
def test_bad_query_parameters_are_refused_naming_them(read_client, timeline, url, field, message):
    response = read_client.get(url)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",  # Not base64.
        "cD1ub3QtYS1tb21lbnQ=",  # "p=not-a-moment": the position is not a timestamp (was a 500).
        "x" * 501,
    ],
)
def test_a_cursor_the_server_did_not_make_is_refused_by_rule(read_client, timeline, cursor):
    # A cursor is opaque text: any string matches the document, so the refusal is a 422.
    response = read_client.get("/api/v1/events/", {"cursor": cursor})
    field, message = "cursor", "invalid cursor; use the 'next' or 'previous' link"
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


def test_limit_above_the_maximum_is_capped(read_client, products):
    response = read_client.get("/api/v1/products/?limit=100000")
    assert _ids(response, "product_id") == ["A", "B", "C", "D"]


# Customers -------------------------------------------------------------------------------------


def test_customer_list_filters_by_creation_time(read_client, timeline):
    Customer.objects.filter(external_id="ana").update(created_at=T0)
    Customer.objects.filter(external_id="bob").update(created_at=T0.replace(day=3))
    everyone = read_client.get("/api/v1/customers/")
    recent = read_client.get("/api/v1/customers/?created_since=2024-05-02")
    assert _ids(everyone, "customer_id") == ["ana", "bob"]
    assert _ids(recent, "customer_id") == ["bob"]


def test_customer_detail_counts_events_by_type(read_client, timeline):
    Customer.objects.filter(external_id="ana").update(
        attributes={"tier": "gold"}, created_at=T0, updated_at=T0
    )
    response = read_client.get("/api/v1/customers/ana/")
    assert response.status_code == 200
    assert response.json() == {
        "customer_id": "ana",
        "attributes": {"tier": "gold"},
        "created_at": "2024-05-01T12:00:00Z",
        "updated_at": "2024-05-01T12:00:00Z",
        "event_counts": {"add_to_cart": 1, "purchase": 1, "view": 2},
    }


def test_customer_delete_forgets_the_customer_and_only_their_events(ingest_client, timeline):
    # given
    assert Event.objects.filter(customer__external_id="ana").count() == 4
    assert Event.objects.filter(customer__external_id="bob").count() == 2
    # when
    response = ingest_client.delete("/api/v1/customers/ana/")
    # then
    assert response.status_code == 200
    assert response.json() == {"deleted_events": 4}
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["bob"]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e-4", "e-5"]
    assert Product.objects.count() == 4


def test_deleting_an_unknown_customer_is_404(ingest_client, timeline):
    response = ingest_client.delete("/api/v1/customers/zoe/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Customer 'zoe' not found."}
    assert Customer.objects.count() == 2
    assert Event.objects.count() == 6


def test_unknown_customer_detail_is_404(read_client, timeline):
    response = read_client.get("/api/v1/customers/zoe/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Customer 'zoe' not found."}


# Events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["e-6", "e-5", "e-4", "e-3", "e-2", "e-1"]),
        ("customer=ana", ["e-6", "e-3", "e-2", "e-1"]),
        ("product=A", ["e-3", "e-2", "e-1"]),
        ("event_type=view", ["e-6", "e-4", "e-1"]),
        ("session_id=s2", ["e-5", "e-4"]),
        ("since=2024-05-01T02:00:00Z", ["e-6", "e-5", "e-4", "e-3", "e-2"]),
        ("until=2024-05-01T02:00:00Z", ["e-1"]),
        ("since=2024-05-01T02:00:00Z&until=2024-05-01T04:00:00Z", ["e-3", "e-2"]),
        ("customer=ana&event_type=view", ["e-6", "e-1"]),
        ("customer=nobody", []),
    ],
)
def test_event_list_filters(read_client, timeline, query, expected):
    assert _ids(read_client.get(f"/api/v1/events/?{query}"), "event_id") == expected


def test_event_list_shows_external_ids(read_client, timeline):
    response = read_client.get("/api/v1/events/?limit=2")
    rows = response.json()["results"]
    received = [row.pop("received_at") for row in rows]
    assert rows == [
        {
            "event_id": "e-6",
            "customer_id": "ana",
            "product_id": "D",
            "event_type": "view",
            "timestamp": "2024-05-01T06:00:00Z",
            "quantity": 1,
            "value": None,
            "session_id": "s3",
            "search_query": "",
            "recommendation_id": None,
        },
        {
            "event_id": "e-5",
            "customer_id": "bob",
            "product_id": None,
            "event_type": "search",
            "timestamp": "2024-05-01T05:00:00Z",
            "quantity": 1,
            "value": None,
            "session_id": "s2",
            "search_query": "lego",
            "recommendation_id": None,
        },
    ]
    assert all(isinstance(value, str) for value in received)


def test_event_list_pages_with_a_cursor(read_client, timeline):
    # given / when: four events a page, then the page the 'next' link points to
    page_a = read_client.get("/api/v1/events/?limit=4")
    page_b = read_client.get(page_a.json()["next"])
    filtered_a = read_client.get("/api/v1/events/?limit=3&customer=ana")
    filtered_b = read_client.get(filtered_a.json()["next"])
    # then
    assert _ids(page_a, "event_id") == ["e-6", "e-5", "e-4", "e-3"]
    assert page_a.json()["previous"] is None
    assert _ids(page_b, "event_id") == ["e-2", "e-1"]
    assert page_b.json()["next"] is None
    assert _ids(filtered_a, "event_id") == ["e-6", "e-3", "e-2"]
    assert _ids(filtered_b, "event_id") == ["e-1"]


def test_event_list_query_count_does_not_grow_with_rows(read_client, timeline, products):
    # given: the same list with six events, then with 46 (after a first request, which also
    # records the token's last use)
    read_client.get("/api/v1/events/")
    with CaptureQueriesContext(connection) as few:
        assert len(read_client.get("/api/v1/events/").json()["results"]) == 6
    Event.objects.bulk_create(
        Event(
            event_id=f"x-{n}",
            customer=timeline["bob"],
            product=products["ABCD"[n % 4]],
            event_type="view",
            occurred_at=T0,
        )
        for n in range(40)
    )
    # when / then
    with CaptureQueriesContext(connection) as many:
        assert len(read_client.get("/api/v1/events/").json()["results"]) == 46
    assert len(many) == len(few)


# Jobs ------------------------------------------------------------------------------------------


def test_job_list_and_detail(admin_client_api, admin_user):
    # given
    done = Job.objects.create(
        kind=JobKind.IMPORT_PRODUCTS,
        state=JobState.SUCCEEDED,
        params={"path": "products.csv"},
        triggered_by=admin_user,
        progress=100,
        counts={"created": 3},
    )
    Job.objects.filter(pk=done.pk).update(
        created_at=T0, started_at=T0.replace(minute=1), finished_at=T0.replace(minute=3, second=30)
    )
    queued = Job.objects.create(kind=JobKind.IMPORT_EVENTS)
    Job.objects.filter(pk=queued.pk).update(created_at=T0.replace(hour=13))
    # when
    listing = admin_client_api.get("/api/v1/jobs/")
    only_done = admin_client_api.get("/api/v1/jobs/?state=succeeded")
    detail = admin_client_api.get(f"/api/v1/jobs/{done.pk}/")
    # then
    assert [row["id"] for row in listing.json()["results"]] == [queued.pk, done.pk]
    assert [row["id"] for row in only_done.json()["results"]] == [done.pk]
    assert detail.json() == {
        "id": done.pk,
        "kind": "import_products",
        "state": "succeeded",
        "params": {"path": "products.csv"},
        "triggered_by": "boss",
        "progress": 100.0,
        "counts": {"created": 3},
        "error": "",
        "created_at": "2024-05-01T12:00:00Z",
        "started_at": "2024-05-01T12:01:00Z",
        "heartbeat_at": None,
        "finished_at": "2024-05-01T12:03:30Z",
        "duration": 150.0,
    }
    assert listing.json()["results"][0]["duration"] is None


def test_job_filters_refuse_unknown_states(admin_client_api):
    response = admin_client_api.get("/api/v1/jobs/?state=exploded")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "state",
            "message": "Select a valid choice. exploded is not one of the available choices.",
        }
    ]


def test_unknown_job_is_404(admin_client_api):
    response = admin_client_api.get("/api/v1/jobs/999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Job 999 not found."}


def test_running_job_duration_runs_to_its_last_heartbeat(admin_client_api):
    job = Job.objects.create(kind=JobKind.IMPORT_EVENTS, state=JobState.RUNNING, progress=40)
    Job.objects.filter(pk=job.pk).update(started_at=T0, heartbeat_at=T0.replace(second=45))
    body = admin_client_api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert (body["state"], body["progress"], body["duration"]) == ("running", 40.0, 45.0)
    assert body["heartbeat_at"] == "2024-05-01T12:00:45Z"
