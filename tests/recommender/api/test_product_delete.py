"""DELETE products/<id>/: the product and every event about it go, every list drops it at once,
the aggregates stay equal to a recount, and the next nightly refresh rebuilds what still holds
it."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.ingestion.records import ProductRecord, parse_event
from recommender.models import (
    ActiveCustomersDaily,
    ActiveCustomersWeekly,
    Customer,
    CustomerActivity,
    CustomerDay,
    CustomerWeek,
    EngineBuild,
    Event,
    EventDailyCount,
    IndexBuild,
    Product,
    ProductEmbedding,
    ProductEventCount,
)
from recommender.services.activity import event_stats_rebuild, product_counts_refresh
from recommender.services.imports import events_import_file
from recommender.services.ingestion import (
    ProductsDeleted,
    events_insert,
    product_delete,
    product_pk_map,
    product_pk_map_for_events,
    products_upsert,
)
from recommender.services.refresh import refresh_plan
from tagging.models import ProductTag, ProductTagSource
from tagging.services import tag_create
from tests.recommender.shop import T0, add_event, fresh_serving, shop  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue_p1_p2(db):
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])


def _ids(response) -> list[str]:
    return [item["product"]["product_id"] for item in response.json()["results"]]


def _aggregates() -> dict[str, list[tuple]]:
    return {
        "daily": sorted(EventDailyCount.objects.values_list("day", "event_type", "events",
                                                            "product_events")),
        "customer_days": sorted(CustomerDay.objects.values_list("day", "customer_id")),
        "customer_weeks": sorted(CustomerWeek.objects.values_list("week", "customer_id")),
        "active_daily": sorted(ActiveCustomersDaily.objects.values_list("day", "customers")),
        "active_weekly": sorted(ActiveCustomersWeekly.objects.values_list("week", "customers")),
        "activity": sorted(CustomerActivity.objects.values_list("customer_id", "events",
                                                                "last_event_at")),
        "products": sorted(ProductEventCount.objects.values_list("product_id", "event_type",
                                                                 "events")),
    }  # fmt: skip


def test_deleting_a_product_deletes_its_events_and_it_leaves_every_list(
    shop,  # noqa: F811 (the fixture imported above)
    ingest_client,
    read_client,
):
    # given: MUG-2 is recommended and similar before
    mug2 = Product.objects.get(external_id="MUG-2")
    mug2_events = Event.objects.filter(product=mug2).count()
    before = {
        "similar": _ids(read_client.get("/api/v1/products/MUG-1/similar", {"k": 7})),
        "customer": _ids(read_client.get("/api/v1/customers/C4/recommendations", {"k": 7})),
        "session": _ids(
            read_client.post(
                "/api/v1/recommendations/session", {"product_ids": ["MUG-1"], "k": 7}, "json"
            )
        ),
    }
    assert all("MUG-2" in ids for ids in before.values()), before
    tag = tag_create(name="kitchen/mugs")
    ProductTag.objects.create(product=mug2, tag=tag, source=ProductTagSource.MERCHANT)
    others = Event.objects.exclude(product=mug2).count()
    # when
    response = ingest_client.delete("/api/v1/products/MUG-2/")
    # then
    assert (response.status_code, response.json()) == (200, {"deleted_events": mug2_events})
    assert mug2_events == 1
    assert read_client.get("/api/v1/products/MUG-2/").json() == {
        "detail": "Product 'MUG-2' not found."
    }
    listed = read_client.get("/api/v1/products/", {"limit": 100}).json()["results"]
    assert "MUG-2" not in [p["product_id"] for p in listed]
    assert "MUG-2" not in _ids(read_client.get("/api/v1/products/MUG-1/similar", {"k": 7}))
    assert "MUG-2" not in _ids(read_client.get("/api/v1/customers/C4/recommendations", {"k": 7}))
    assert "MUG-2" not in _ids(
        read_client.post(
            "/api/v1/recommendations/session", {"product_ids": ["MUG-1"], "k": 7}, "json"
        )
    )
    assert not Event.objects.filter(product_id=mug2.pk).exists()
    assert Event.objects.count() == others
    assert not ProductEmbedding.objects.filter(product_id=mug2.pk).exists()
    assert not ProductTag.objects.filter(product_id=mug2.pk).exists()
    again = ingest_client.delete("/api/v1/products/MUG-2/")
    assert (again.status_code, again.json()) == (404, {"detail": "Product 'MUG-2' not found."})


@pytest.mark.parametrize("counted", [True, False], ids=["counted", "not-yet-counted"])
def test_the_aggregates_equal_a_recount_after_a_deletion(
    shop,  # noqa: F811
    ingest_client,
    counted,
):
    # given: C9's only events are of MUG-2 (one day), and their newest event is one of them;
    # C5's day keeps its other products' events
    c9 = Customer.objects.create(external_id="C9")
    add_event(c9, "MUG-2", at=T0 + timedelta(days=30))
    add_event(c9, "INK-1", at=T0 + timedelta(days=29))
    add_event(c9, "MUG-2", at=T0 + timedelta(days=31), event_type="view")
    if counted:
        product_counts_refresh()
    # when
    response = ingest_client.delete("/api/v1/products/MUG-2/")
    product_counts_refresh()
    # then
    assert response.json() == {"deleted_events": 3}
    kept = _aggregates()
    event_stats_rebuild()
    assert kept == _aggregates()
    assert CustomerActivity.objects.get(customer=c9).last_event_at == T0 + timedelta(days=29)


def test_the_nightly_refresh_rebuilds_what_still_holds_the_product(
    shop,  # noqa: F811
    ingest_client,
):
    # given: everything built, nothing changed since
    assert refresh_plan().reasons == ()
    index, engine = IndexBuild.objects.get(), EngineBuild.objects.get()
    # when
    ingest_client.delete("/api/v1/products/MUG-2/")
    # then
    plan = refresh_plan()
    assert (plan.reindex, plan.train) == (True, True)
    assert plan.reasons == (
        f"1 indexed product is deleted or inactive since index build {index.pk}",
        f"1 event deleted since engine build {engine.pk}",
    )


# A deletion between an insert's product lookup and the insert -------------------------------


def test_an_insert_refuses_products_deleted_since_they_were_looked_up(catalogue_p1_p2):
    # given: the lookup, then the deletion (the batch API and imports look up first)
    records = [
        parse_event(
            {"customer_id": "C1", "product_id": pid, "event_type": "view",
             "timestamp": "2024-05-01T10:00:00Z"},
            event_types={"view"}, now=T0 + timedelta(days=365),
        )
        for pid in ("P1", "P2")
    ]  # fmt: skip
    product_map = product_pk_map(external_ids=["P1", "P2"])
    product_delete(product=Product.objects.get(external_id="P2"))
    # when
    with pytest.raises(ProductsDeleted) as refused:
        events_insert(records=records, product_map=product_map)
    # then: nothing written, no event names a product that is gone
    assert refused.value.external_ids == ["P2"]
    assert (Event.objects.count(), Customer.objects.count()) == (0, 0)


def test_an_import_rejects_the_rows_of_a_product_deleted_while_it_runs(catalogue_p1_p2, tmp_path):
    # given: two chunks; P2 is deleted once the first is written
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,customer_id,product_id,event_type,timestamp\n"
        "e1,C1,P1,view,2024-05-01T10:00:00Z\n"
        "e2,C1,P2,view,2024-05-01T10:01:00Z\n"
        "e3,C2,P1,view,2024-05-01T10:02:00Z\n"
        "e4,C2,P2,view,2024-05-01T10:03:00Z\n"
    )
    deleted: list[int] = []

    def delete_p2_once(fraction: float) -> None:
        if not deleted:
            deleted.append(product_delete(product=Product.objects.get(external_id="P2")))

    # when
    report = events_import_file(path=path, progress=delete_p2_once, chunk_size=2)
    # then
    assert deleted == [1]  # e2, written with the first chunk
    assert [(e.line, e.field, e.message) for e in report.errors] == [
        (5, "product_id", "unknown product 'P2'")
    ]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e1", "e3"]


def _views(*pairs: tuple[str, str]) -> list:
    """View events (event id, product id) of customer C1."""
    return [
        parse_event(
            {"event_id": event_id, "customer_id": "C1", "product_id": pid, "event_type": "view",
             "timestamp": "2024-05-01T10:00:00Z"},
            event_types={"view"}, now=T0 + timedelta(days=365),
        )
        for event_id, pid in pairs
    ]  # fmt: skip


def _product_probes(context: CaptureQueriesContext) -> int:
    """Queries that read the products table itself (not its aggregates)."""
    table = re.compile(r"\brecommender_product\b")
    return sum(bool(table.search(query["sql"])) for query in context.captured_queries)


def test_an_insert_notices_a_deletion_by_any_path_since_the_lookup(catalogue_p1_p2):
    # given: the import's lookup, then a deletion that bypasses the service (the admin, the ORM)
    product_map = product_pk_map_for_events(external_ids=["P1", "P2"])
    Product.objects.filter(external_id="P2").delete()
    # when
    with pytest.raises(ProductsDeleted) as refused:
        events_insert(records=_views(("e1", "P1"), ("e2", "P2")), product_map=product_map)
    # then
    assert refused.value.external_ids == ["P2"]
    assert (Event.objects.count(), Customer.objects.count()) == (0, 0)


def test_an_insert_probes_its_products_only_once_a_product_was_deleted(catalogue_p1_p2):
    # given: an import's lookup
    product_map = product_pk_map_for_events()
    # when: a chunk is inserted, another product is deleted, then the next chunk
    with CaptureQueriesContext(connection) as first:
        events_insert(records=_views(("e1", "P1")), product_map=product_map)
    products_upsert(records=[ProductRecord("P3", "Jug")])
    product_delete(product=Product.objects.get(external_id="P3"))
    with CaptureQueriesContext(connection) as second:
        events_insert(records=_views(("e2", "P2")), product_map=product_map)
    # then: PostgreSQL's deletions counter spares the first chunk its probe; elsewhere every
    # chunk probes its products
    probes = (_product_probes(first), _product_probes(second))
    assert probes == ((0, 1) if connection.vendor == "postgresql" else (1, 1))
    assert sorted(Event.objects.values_list("event_id", "product__external_id")) == [
        ("e1", "P1"), ("e2", "P2"),
    ]  # fmt: skip
