"""Ingestion throughput: the bulk file import (CLI) and the batch API, on PostgreSQL.

    nice -n 10 .venv/bin/python bench/ingest.py [--api-batches 60] [--api-clients 2] [--keep-db]

Targets (2-core machine): at least 20,000 events/s for ``manage.py import_events`` and at least
5,000 events/s for ``POST /api/v1/events/batch`` (1,000 events per request).

What it does, in a fresh database (``recsite_bench`` by default; dropped at the end):

1. Builds interchange files (``products.csv``, ``events.csv``) from the real UCI Online Retail
   export with the same rules as ``import_online_retail`` (396,370 purchase events), and uses
   the Amazon Office files as they are (53,258 events).
2. For each data set, on an empty events table: the baseline, measured in the same run, is
   plain Django (``csv.DictReader``, model instances, ``bulk_create(batch_size=2000)`` in one
   transaction, customers bulk-created first, no validation and no idempotency); then
   ``manage.py import_events`` (called in-process); then the same import again (all duplicates).
3. Starts gunicorn on loopback and posts batches of 1,000 new events with an ``ingest`` token
   from concurrent keep-alive clients; the baseline is the same batches through the service the
   endpoint calls (``parse_event`` + ``events_insert``) without HTTP.

4. Relationships (issue 19): the 57,544 who-trusts-whom edges of Ciao as an interchange file
   (``customer_id,target_customer_id,type``), imported by ``manage.py import_relationships``
   into an empty table (customers created on first sight), then again (all unchanged); the
   baseline is plain Django ``bulk_create`` of the same edges. Target: at least 20,000 edges/s.
   ``--only-edges`` runs this part alone.

Figures are printed as events/s (edges/s) and as a ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import itertools
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
RETAIL_EXPORT = SHARED / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
AMAZON = SHARED / "amazon_office"
SERVER = "postgres://postgres@127.0.0.1:5432"
BATCH = 1000

sys.path.insert(0, str(REPO))

from _support import (  # noqa: E402  (bench/ is the script's own folder on sys.path)
    add_port_argument,
    cpu_model,
    drop_database,
    gunicorn_start,
    recreate_database,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="recsite_bench", help="Created, then dropped.")
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL (no database).")
    parser.add_argument("--api-batches", type=int, default=60, help="Timed API requests.")
    parser.add_argument("--api-clients", type=int, default=2, help="Concurrent API clients.")
    parser.add_argument("--api-workers", type=int, default=2, help="gunicorn workers.")
    add_port_argument(parser)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database afterwards.")
    parser.add_argument(
        "--shop",
        type=Path,
        help="A generated shop folder (bench/shopgen.py: products.csv, events.csv): import it "
        "into --database, time the import and the reads that must stay fast at its size, and "
        "keep the database.",
    )
    parser.add_argument("--replay-rows", type=int, default=1_000_000)
    parser.add_argument("--only-edges", action="store_true", help="Only the relationships part.")
    return parser.parse_args()


def write_retail_interchange(folder: Path) -> tuple[Path, Path]:
    """products.csv and events.csv in the interchange format, from the raw export."""
    from recommender.ingestion import online_retail
    from recommender.ingestion.readers import open_records
    from recommender.ingestion.records import RowError

    parse = online_retail.LineParser()
    catalogue = online_retail.CatalogueBuilder()
    ids = online_retail.EventIds()
    events_path = folder / "retail_events.csv"
    columns = ["event_id", "customer_id", "product_id", "event_type", "timestamp", "quantity",
               "value", "session_id"]  # fmt: skip
    with open_records(RETAIL_EXPORT) as reader, events_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for line, raw in reader:
            assert not isinstance(raw, RowError)
            retail_line = parse(line, raw)
            event_id = ids.next_id(retail_line)
            if online_retail.is_catalogue_line(retail_line):
                catalogue.add(retail_line)
            if online_retail.skip_reason(retail_line) is None:
                writer.writerow(online_retail.raw_event(retail_line, event_id=event_id))
    products_path = folder / "retail_products.csv"
    with products_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["product_id", "title", "price"])
        writer.writeheader()
        for _, raw in catalogue.raw_products():
            writer.writerow({k: raw[k] for k in ("product_id", "title", "price")})
    return products_path, events_path


def count_rows(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for _ in handle) - 1


# CLI import ----------------------------------------------------------------------------------
def empty_events_and_customers() -> None:
    from django.db import connection

    from recommender.models import Customer, Event

    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {Event._meta.db_table}, {Customer._meta.db_table} RESTART IDENTITY CASCADE"
        )
        cursor.execute(f"VACUUM ANALYZE {Event._meta.db_table}")
        # Each timed run starts after a checkpoint, so none pays for the previous one's WAL.
        cursor.execute("CHECKPOINT")


def baseline_bulk_create(path: Path) -> float:
    """Plain Django: what a first implementation of the import would do."""
    from django.db import transaction
    from django.utils import timezone

    from recommender.models import Customer, Event
    from recommender.services.ingestion import product_pk_map

    started = time.perf_counter()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    products = product_pk_map()
    received = timezone.now()
    with transaction.atomic():
        customer_ids = sorted({row["customer_id"] for row in rows})
        Customer.objects.bulk_create(
            [Customer(external_id=c) for c in customer_ids], batch_size=2000
        )
        customers = dict(Customer.objects.values_list("external_id", "pk"))
        Event.objects.bulk_create(
            [
                Event(
                    event_id=row["event_id"],
                    customer_id=customers[row["customer_id"]],
                    product_id=products[row["product_id"]],
                    event_type=row["event_type"],
                    occurred_at=datetime.fromisoformat(row["timestamp"]).astimezone(UTC),
                    quantity=int(row["quantity"] or 1),
                    value=Decimal(row["value"]) if row["value"] else None,
                    session_id=row.get("session_id") or "",
                    received_at=received,
                )
                for row in rows
            ],
            batch_size=2000,
        )
    return time.perf_counter() - started


def cli_import(path: Path) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command("import_events", str(path), no_progress=True, stdout=out, stderr=out)
    return time.perf_counter() - started, out.getvalue()


def bench_cli(label: str, products: Path, events: Path) -> dict[str, float]:
    from django.core.management import call_command
    from django.db import connection

    from recommender.models import Event

    call_command("import_products", str(products), no_progress=True, stdout=io.StringIO())
    n = count_rows(events)
    empty_events_and_customers()
    base = baseline_bulk_create(events)
    assert Event.objects.count() == n
    empty_events_and_customers()
    ours, output = cli_import(events)
    assert Event.objects.count() == n, output
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    replay, output = cli_import(events)
    assert f"0 created, {n:,} duplicates" in output, output
    figures = {"events": n, "baseline": n / base, "import": n / ours, "replay": n / replay}
    print(f"\n{label}: {n:,} events")
    print(f"  baseline bulk_create    {base:6.2f} s  {n / base:9,.0f} events/s")
    print(
        f"  manage.py import_events {ours:6.2f} s  {n / ours:9,.0f} events/s"
        f"   x{base / ours:.2f} baseline"
    )
    print(
        f"  same file again         {replay:6.2f} s  {n / replay:9,.0f} events/s"
        f"   x{base / replay:.2f} baseline  (all duplicates)"
    )
    return figures


# Relationships -------------------------------------------------------------------------------
CIAO_TRUST = SHARED / "ciao" / "trust.csv.gz"


def write_edges_interchange(folder: Path) -> Path:
    import gzip

    path = folder / "relationships.csv"
    with gzip.open(CIAO_TRUST, "rt", newline="") as source, path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "target_customer_id", "type"])
        for row in csv.DictReader(source):
            writer.writerow([row["customer_id"], row["trusted_customer_id"], "trusts"])
    return path


def empty_relationships() -> None:
    from django.db import connection

    from recommender.models import Customer
    from social.models import Relationship

    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {Relationship._meta.db_table}, {Customer._meta.db_table} "
            "RESTART IDENTITY CASCADE"
        )
        cursor.execute("CHECKPOINT")


def baseline_edges(path: Path) -> float:
    """Plain Django: customers bulk-created, then the edges, no validation, no idempotency."""
    from django.db import transaction
    from django.utils import timezone

    from recommender.models import Customer
    from social.models import Relationship

    started = time.perf_counter()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    now = timezone.now()
    with transaction.atomic():
        names = sorted({r["customer_id"] for r in rows} | {r["target_customer_id"] for r in rows})
        Customer.objects.bulk_create([Customer(external_id=c) for c in names], batch_size=2000)
        customers = dict(Customer.objects.values_list("external_id", "pk"))
        Relationship.objects.bulk_create(
            [
                Relationship(
                    source_id=customers[r["customer_id"]],
                    target_id=customers[r["target_customer_id"]],
                    type=r["type"],
                    created_at=now,
                )
                for r in rows
            ],
            batch_size=2000,
        )
    return time.perf_counter() - started


def bench_edges() -> dict[str, float]:
    from django.core.management import call_command

    from social.models import Relationship

    with tempfile.TemporaryDirectory(prefix="recsite-bench-edges-") as tmp:
        path = write_edges_interchange(Path(tmp))
        n = count_rows(path)
        empty_relationships()
        base = baseline_edges(path)
        assert Relationship.objects.count() == n
        empty_relationships()
        timings = []
        for _ in range(2):  # A first import, then the same file again (all unchanged).
            out = io.StringIO()
            started = time.perf_counter()
            call_command("import_relationships", str(path), no_progress=True, stdout=out,
                         stderr=out)  # fmt: skip
            timings.append(time.perf_counter() - started)
            assert Relationship.objects.count() == n, out.getvalue()
        assert f"0 created, 0 updated, {n:,} unchanged" in out.getvalue(), out.getvalue()
    ours, replay = timings
    print(f"\nCiao trust edges: {n:,} relationships")
    print(f"  baseline bulk_create          {base:6.2f} s  {n / base:9,.0f} edges/s")
    print(
        f"  manage.py import_relationships {ours:6.2f} s  {n / ours:9,.0f} edges/s"
        f"   x{base / ours:.2f} baseline"
    )
    print(
        f"  same file again               {replay:6.2f} s  {n / replay:9,.0f} edges/s"
        f"   x{base / replay:.2f} baseline  (all unchanged)"
    )
    return {"edges": n, "baseline": n / base, "import": n / ours, "replay": n / replay}


# Batch API -----------------------------------------------------------------------------------
def api_batches(events: Path, *, prefix: str, count: int) -> list[list[dict[str, object]]]:
    """``count`` batches of new events (ids prefixed) taken from an interchange events file."""
    items: list[dict[str, object]] = []
    with events.open(newline="") as handle:
        for row in csv.DictReader(handle):
            item: dict[str, object] = {k: v for k, v in row.items() if v != ""}
            item["event_id"] = f"{prefix}-{row['event_id']}"
            # JSON as a shop sends it: the API takes numbers as numbers (strings are refused).
            if "quantity" in item:
                item["quantity"] = int(row["quantity"])
            if "value" in item:
                item["value"] = float(row["value"])
            items.append(item)
            if len(items) == count * BATCH:
                break
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def service_path(batches: list[list[dict[str, object]]]) -> float:
    from django.conf import settings
    from django.utils import timezone

    from recommender.ingestion.records import parse_event
    from recommender.services.ingestion import events_insert, product_pk_map

    started = time.perf_counter()
    for items in batches:
        now = timezone.now()
        records = [parse_event(r, event_types=settings.RECSITE_EVENT_TYPES, now=now) for r in items]
        product_map = product_pk_map(external_ids={r.product_id for r in records if r.product_id})
        counts = events_insert(records=records, product_map=product_map)
        assert counts.created == len(items), counts
    return time.perf_counter() - started


def serve(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return gunicorn_start(port=args.port, workers=args.api_workers, env=env)


def post_all(
    port: int, token: str, bodies: list[bytes], *, clients: int
) -> tuple[float, list[int]]:
    """Post every body from ``clients`` keep-alive connections; (seconds, created per body)."""
    todo: queue.Queue[tuple[int, bytes]] = queue.Queue()
    for index, body in enumerate(bodies):
        todo.put((index, body))
    created = [0] * len(bodies)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                index, body = todo.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/api/v1/events/batch", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                failures.append(f"{response.status}: {payload[:300]!r}")
                return
            created[index] = json.loads(payload)["created"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"API request failed: {failures[0]}")
    return elapsed, created


def bench_api(args: argparse.Namespace, events: Path, env: dict[str, str]) -> dict[str, float]:
    from accounts.services import api_token_create

    _, token = api_token_create(name="bench", scopes=["ingest"])
    warmup = api_batches(events, prefix="warm", count=2)
    timed = api_batches(events, prefix="api", count=args.api_batches)
    direct = api_batches(events, prefix="svc", count=args.api_batches)
    n = sum(len(b) for b in timed)
    base = service_path(direct)
    server = serve(args, env)
    try:
        warm_bodies = [json.dumps({"items": b}).encode() for b in warmup]
        post_all(args.port, token, warm_bodies, clients=args.api_clients)
        bodies = [json.dumps({"items": b}).encode() for b in timed]
        seconds, created = post_all(args.port, token, bodies, clients=args.api_clients)
        assert sum(created) == n, sum(created)
        replay, created = post_all(args.port, token, bodies, clients=args.api_clients)
        assert sum(created) == 0, sum(created)
        single, _ = post_all(
            args.port, token, [json.dumps({"items": b}).encode() for b in
                               api_batches(events, prefix="one", count=10)], clients=1
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\nbatch API: {n:,} events in {len(timed)} requests of {BATCH}, "
        f"{args.api_clients} clients, gunicorn --workers {args.api_workers}"
    )
    print(f"  service without HTTP    {base:6.2f} s  {n / base:9,.0f} events/s")
    print(
        f"  POST events/batch       {seconds:6.2f} s  {n / seconds:9,.0f} events/s"
        f"   x{base / seconds:.2f} baseline"
    )
    print(
        f"  same batches again      {replay:6.2f} s  {n / replay:9,.0f} events/s"
        f"   x{base / replay:.2f} baseline  (all duplicates)"
    )
    print(
        f"  one client, 10 requests {single:6.2f} s  {10 * BATCH / single:9,.0f} events/s"
        f"   ({single / 10 * 1000:.0f} ms per request)"
    )
    return {"events": n, "baseline": n / base, "api": n / seconds, "replay": n / replay}


# A generated shop at scale ----------------------------------------------------------------
def _rss_peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _explain(sql: str, params: list[object]) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def _timed_ms(call, repeat: int = 5) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    result = call()  # The first call warms the caches; the median of the next ones counts.
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2], result


def bench_shop(args: argparse.Namespace) -> None:
    """Import a generated shop and time what must stay fast at its size."""
    from django.core.management import call_command
    from django.db import connection

    from recommender.models import Customer, CustomerActivity, Event
    from recommender.selectors.recommendations import customer_recent_events
    from recommender.services.imports import events_import_file

    started = time.perf_counter()
    out = io.StringIO()
    call_command("import_products", str(args.shop / "products.csv"), no_progress=True, stdout=out)
    print(f"products: {time.perf_counter() - started:.1f} s\n{out.getvalue()}")
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    events = args.shop / "events.csv"
    marks: list[tuple[float, float]] = []
    began = time.perf_counter()

    def progress(fraction: float) -> None:
        if not marks or fraction - marks[-1][0] >= 0.1 or fraction >= 1.0:
            now = time.perf_counter() - began
            marks.append((fraction, now))
            print(
                f"  {fraction:6.1%} of the file after {now:7.1f} s, "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )

    report = events_import_file(path=events, progress=progress)
    seconds = time.perf_counter() - began
    print(report.summary())
    print(
        f"manage.py import_events path: {report.events.created:,} events in {seconds:.1f} s = "
        f"{report.events.created / seconds:,.0f} events/s (rows {report.rows / seconds:,.0f}/s); "
        f"peak RSS {_rss_peak_mb():,.0f} MB; load average {os.getloadavg()[0]:.1f}"
    )
    for (f0, t0), (f1, t1) in itertools.pairwise(marks):
        rate = (f1 - f0) * report.rows / max(t1 - t0, 1e-9)
        print(f"  file {f0:5.0%}-{f1:4.0%}: {rate:,.0f} rows/s")

    with tempfile.TemporaryDirectory(prefix="recsite-replay-") as tmp:
        head = Path(tmp) / "events.csv"
        with events.open() as source, head.open("w") as target:
            for n, line in enumerate(source):
                if n > args.replay_rows:
                    break
                target.write(line)
        began = time.perf_counter()
        replay = events_import_file(path=head)
        seconds = time.perf_counter() - began
        print(
            f"replay of the first {replay.rows:,} rows: {replay.events.created:,} created, "
            f"{replay.events.duplicates:,} duplicates in {seconds:.1f} s = "
            f"{replay.rows / seconds:,.0f} rows/s"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Event._meta.db_table}")
        cursor.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND (c.relname LIKE 'recommender_event%%' OR c.relname LIKE 'event_%%' "
            "OR c.relname LIKE 'recommender_customer%%' OR c.relname LIKE 'recommender_active%%') "
            "ORDER BY pg_relation_size(c.oid) DESC"
        )
        print("sizes: " + ", ".join(f"{name} {size}" for name, size in cursor.fetchall()))

    # The per-request customer history: the heaviest customer and a typical one.
    heavy = CustomerActivity.objects.order_by("-events").first()
    counts = sorted(CustomerActivity.objects.values_list("events", flat=True)[:100_000])
    typical_events = counts[len(counts) // 2]
    typical = CustomerActivity.objects.filter(events=typical_events).first()
    for label, activity in (("heaviest", heavy), ("median", typical)):
        assert activity is not None
        customer = Customer.objects.get(pk=activity.customer_id)
        ms, rows = _timed_ms(lambda c=customer: customer_recent_events(customer=c))
        print(
            f"customer_recent_events, {label} customer ({activity.events:,} events): "
            f"{ms:.2f} ms median, {len(rows)} rows"  # type: ignore[arg-type]
        )
        print(
            _explain(
                f"SELECT product_id, event_type, occurred_at FROM {Event._meta.db_table} "
                f"WHERE customer_id = %s ORDER BY occurred_at DESC LIMIT 200",
                [customer.pk],
            )
        )

    # The nightly refresh plan's reads: events received since a recent moment, and the total.
    from django.db.models import Sum

    from recommender.models import EventDailyCount

    newest = Event.objects.order_by("-id").values_list("received_at", flat=True).first()
    ms, since = _timed_ms(lambda: Event.objects.filter(received_at__gt=newest).count())
    print(f"refresh plan: events received since the last chunk: {since} in {ms:.1f} ms")
    print(_explain(f"SELECT count(*) FROM {Event._meta.db_table} WHERE received_at > %s", [newest]))
    ms, total = _timed_ms(lambda: EventDailyCount.objects.aggregate(n=Sum("product_events"))["n"])
    print(f"refresh plan: product events from the daily aggregate: {total:,} in {ms:.1f} ms")

    # The daily churn scoring's read of every event.
    from churn.selectors import event_log_load

    began = time.perf_counter()
    log = event_log_load()
    print(
        f"churn event_log_load: {len(log):,} events in {time.perf_counter() - began:.1f} s; "
        f"peak RSS {_rss_peak_mb():,.0f} MB"
    )


def main() -> None:
    args = parse_args()
    database_url = f"{args.server}/{args.database}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "RECSITE_LOG_LEVEL": "WARNING",
        # Static files are not collected for a bench; WhiteNoise would warn in every worker.
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    os.environ.update(env)
    recreate_database(args.server, args.database)
    if args.shop is not None:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.1f}; {args.shop} into {args.database} (kept)"
        )
        bench_shop(args)
        return
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}; {version}"
        )
        if args.only_edges:
            print("\n" + json.dumps({"relationships": {m: round(v) for m, v in
                                                        bench_edges().items()}}))  # fmt: skip
            return
        with tempfile.TemporaryDirectory(prefix="recsite-bench-") as tmp:
            started = time.perf_counter()
            retail_products, retail_events = write_retail_interchange(Path(tmp))
            seconds = time.perf_counter() - started
            print(f"interchange files from the Online Retail export in {seconds:.1f} s")
            results = {
                "amazon_office": bench_cli(
                    "Amazon Office events.csv", AMAZON / "products.csv", AMAZON / "events.csv"
                ),
                "online_retail": bench_cli(
                    "Online Retail events (interchange CSV)", retail_products, retail_events
                ),
            }
            if not args.skip_api:
                results["api"] = bench_api(args, retail_events, env)
            results["relationships"] = bench_edges()
        print(
            "\n" + json.dumps({k: {m: round(v) for m, v in f.items()} for k, f in results.items()})
        )
    finally:
        connection.close()
        if not args.keep_db:
            drop_database(args.server, args.database)


if __name__ == "__main__":
    main()
