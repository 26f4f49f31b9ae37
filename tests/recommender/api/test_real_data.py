"""The Amazon Office sample, sent through the batch API as a shop back end would send it."""

import csv
from collections.abc import Callable

from recommender.models import Customer, Event, Product

# The API takes JSON types: a shop exporting its CSV through the API converts the cells.
_JSON_TYPES: dict[str, Callable[[str], object]] = {
    "price": float,
    "value": float,
    "quantity": int,
    "tags": lambda v: v.split("|"),
}


def _rows(path) -> list[dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as handle:
        # Empty cells are dropped like absent JSON keys.
        return [
            {k: _JSON_TYPES.get(k, str)(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(handle)
        ]


def test_amazon_office_catalogue_and_events_load_through_the_api(ingest_client, shared_data):
    # given
    products = _rows(shared_data / "amazon_office" / "products.csv")
    events = _rows(shared_data / "amazon_office" / "events.csv")[:3000]
    # when
    product_answers = [
        ingest_client.post(
            "/api/v1/products/batch", {"items": products[i : i + 1000]}, format="json"
        ).json()
        for i in range(0, len(products), 1000)
    ]
    event_answers = [
        ingest_client.post(
            "/api/v1/events/batch", {"items": events[i : i + 1000]}, format="json"
        ).json()
        for i in range(0, len(events), 1000)
    ]
    replay = ingest_client.post(
        "/api/v1/events/batch", {"items": events[1000:2000]}, format="json"
    ).json()
    # then
    assert len(products) == 2420
    assert [a["created"] for a in product_answers] == [1000, 1000, 420]
    assert Product.objects.count() == 2420
    assert [(a["created"], a["duplicates"]) for a in event_answers] == [(1000, 0)] * 3
    assert sum(a["customers_created"] for a in event_answers) == len(
        {e["customer_id"] for e in events}
    )
    assert replay == {"created": 0, "duplicates": 1000, "customers_created": 0}
    assert Event.objects.count() == 3000
    assert Customer.objects.count() == len({e["customer_id"] for e in events})
