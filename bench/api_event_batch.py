"""Throughput of POST /api/v1/events/batch, against the service it wraps.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/recsite \
        nice -n 10 .venv/bin/python bench/api_event_batch.py [--batches 20]

(settings default to recsite.settings.test)

Target: at least 5,000 events/s through the endpoint on PostgreSQL on 2 cores, i.e. a
1,000-event request well under 200 ms. The baseline, measured in the same run, is the same work
without HTTP: parsing the rows and calling ``events_insert`` directly. The ratio shows what the
API layer (authentication, JSON, envelope checks, error collection) adds on top.

Runs in a throwaway database named ``bench_<NAME>`` (created, then dropped).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.services import api_token_create  # noqa: E402
from recommender.ingestion.records import parse_event  # noqa: E402
from recommender.models import Event, Product  # noqa: E402
from recommender.services.ingestion import events_insert, product_pk_map  # noqa: E402

BATCH = 1000
PRODUCTS = 500
CUSTOMERS = 300


def make_batch(start: int) -> list[dict]:
    return [
        {
            "event_id": f"bench-{n}",
            "customer_id": f"c{n % CUSTOMERS}",
            "product_id": f"p{n % PRODUCTS}",
            "event_type": ("view", "click", "add_to_cart", "purchase")[n % 4],
            "timestamp": f"2024-05-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "session_id": f"s{n // 7}",
        }
        for n in range(start, start + BATCH)
    ]


def service_path(items: list[dict]) -> float:
    started = time.perf_counter()
    now = timezone.now()
    records = [parse_event(raw, event_types=settings.RECSITE_EVENT_TYPES, now=now) for raw in items]
    product_map = product_pk_map(external_ids={r.product_id for r in records})
    counts = events_insert(records=records, product_map=product_map)
    assert counts.created == BATCH, counts
    return time.perf_counter() - started


def api_path(client: APIClient, body: str, *, created: int) -> float:
    started = time.perf_counter()
    response = client.post("/api/v1/events/batch", body, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == created, response.json()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    setup_test_environment()
    test_name = "bench_" + str(settings.DATABASES["default"]["NAME"]).rsplit("/", 1)[-1]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = test_name
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        Product.objects.bulk_create(
            Product(external_id=f"p{n}", title=f"Product {n}") for n in range(PRODUCTS)
        )
        _, raw = api_token_create(name="bench", scopes=["ingest"])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

        # Warm-up: creates the customers and the staging table, fills caches.
        service_path(make_batch(10_000_000))
        api_path(client, json.dumps({"items": make_batch(20_000_000)}), created=BATCH)

        service_times, api_times, replay_times = [], [], []
        for i in range(args.batches):
            service_times.append(service_path(make_batch(i * 2 * BATCH)))
            body = json.dumps({"items": make_batch((i * 2 + 1) * BATCH)})
            api_times.append(api_path(client, body, created=BATCH))
            replay_times.append(api_path(client, body, created=0))
        assert Event.objects.count() == (2 * args.batches + 2) * BATCH

        base = statistics.median(service_times)
        for label, times in [
            ("service (baseline)", service_times),
            ("API, new events", api_times),
            ("API, replayed batch", replay_times),
        ]:
            median = statistics.median(times)
            print(
                f"{label:22} median {median * 1000:7.1f} ms per {BATCH} events "
                f"= {BATCH / median:8.0f} events/s   x{median / base:.2f} baseline"
            )
        print(f"database: {connection.vendor}; batches: {args.batches}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
