"""Serving latency and throughput of ``GET /api/v1/customers/<id>/recommendations``.

    nice -n 10 .venv/bin/python bench/serve.py [--requests 4000] [--clients 2,4] [--reuse-db]

Target (2-core machine): p99 <= 20 ms at >= 200 requests/s with 0 errors.

What it does, in its own database (``recsite_bench_serve`` by default; dropped at the end
unless ``--keep-db``; ``--reuse-db`` keeps a prepared one between runs):

1. Imports the real UCI Online Retail export with ``manage.py import_online_retail``, embeds and
   indexes the products with the configured model (``manage.py reindex``), and fits the
   recommendation engine (``manage.py train``).
2. Baseline, measured in the same run: the service behind the endpoint
   (``customer_recommendations``) called in this process, one request at a time, no HTTP.
3. Starts gunicorn on loopback (one sync worker per core by default, keep-alive) and loads the
   endpoint from separate client processes, each with one keep-alive ``http.client``
   connection, over a fixed sample of real customer ids (seeded), k=10. Each client count is a
   closed loop: a client sends its next request when the previous answer has arrived. Every
   answer must be a 200 with 10 results.

Printed: p50/p90/p99/max latency as seen by the clients, sustained requests/s, errors, and the
ratio of the per-request time to the in-process baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RETAIL_EXPORT = (
    REPO.parent / "shared" / "data" / "online_retail" / ("online_retail_2010-12_2011-12.csv.gz")
)
SERVER = "postgres://postgres@127.0.0.1:5432"
K = 10

sys.path.insert(0, str(REPO))

from _support import (  # noqa: E402  (bench/ is the script's own folder on sys.path)
    add_port_argument,
    cpu_model,
    database_exists,
    drop_database,
    gunicorn_start,
    load,
    recreate_database,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="recsite_bench_serve")
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL (no database).")
    parser.add_argument("--requests", type=int, default=4000, help="Timed requests per run.")
    parser.add_argument(
        "--clients", default="1,2,4", help="Comma-separated client process counts, one run each."
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (one per core)."
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="Threads per worker (more than 1: gthread)."
    )
    parser.add_argument("--sample", type=int, default=500, help="Distinct customers requested.")
    add_port_argument(parser)
    parser.add_argument("--reuse-db", action="store_true", help="Use a prepared database as is.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database afterwards.")
    return parser.parse_args()


def prepare() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for name, args in (
        ("import_online_retail", [str(RETAIL_EXPORT), "--no-progress"]),
        ("reindex", ["--no-progress"]),
        ("train", []),
    ):
        started = time.perf_counter()
        call_command(name, *args)
        print(f"  manage.py {name}: {time.perf_counter() - started:.1f} s")


def sample_customers(size: int) -> list[str]:
    from recommender.models import Customer

    ids = sorted(Customer.objects.filter(events__isnull=False).distinct().values_list(
        "external_id", flat=True))  # fmt: skip
    return random.Random(0).sample(ids, min(size, len(ids)))


def baseline(customers: list[str], repeat: int) -> list[float]:
    """Seconds per call of the endpoint's service in this process (no HTTP, no DRF)."""
    from recommender.models import Customer
    from recommender.services.recommendations import customer_recommendations

    rows = {c.external_id: c for c in Customer.objects.filter(external_id__in=customers)}
    for external_id in customers[:20]:
        customer_recommendations(customer=rows[external_id], k=K)  # Warm: loads the engine.
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        customer_recommendations(customer=rows[customers[i % len(customers)]], k=K)
        times.append(time.perf_counter() - started)
    return times


def serve(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[bytes]:
    extra = ["--threads", str(args.threads), "--keep-alive", "30"]
    return gunicorn_start(port=args.port, workers=args.workers, env=env, extra=extra)


def main() -> None:
    args = parse_args()
    database_url = f"{args.server}/{args.database}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "RECSITE_LOG_LEVEL": "WARNING",
        "RECSITE_VAR_DIR": os.environ.get("RECSITE_VAR_DIR", f"/tmp/{args.database}-var"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    os.environ.update(env)
    reuse = args.reuse_db and database_exists(args.server, args.database)
    if not reuse:
        recreate_database(args.server, args.database)
    import django

    django.setup()
    from django.db import connection

    from accounts.services import api_token_create
    from recommender.models import EngineBuild, Event, Product

    try:
        if not reuse:
            print("preparing the database:")
            prepare()
        with connection.cursor() as cursor:
            # Fresh statistics, as autovacuum would have them in a running shop: without them
            # the planner guesses ~150 events per customer and sorts all of a heavy customer's
            # events (7 ms for 7,800) instead of reading the newest 200 off the index.
            cursor.execute("ANALYZE")
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        build = EngineBuild.objects.filter(status="ready").latest()
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}; {version}"
        )
        print(
            f"data: {Product.objects.count():,} products, {Event.objects.count():,} events; "
            f"engine build {build.pk} ({build.customer_count:,} customers, "
            f"fitted in {build.fit_seconds:.1f} s)"
        )
        customers = sample_customers(args.sample)
        base = baseline(customers, repeat=min(args.requests, 1000))
        base_ms = statistics.median(base) * 1000
        print(
            f"\nbaseline: the service in-process, one at a time, {len(base)} calls: "
            f"median {base_ms:.2f} ms, p99 "
            f"{statistics.quantiles(base, n=100, method='inclusive')[98] * 1000:.2f} ms"
        )
        _, token = api_token_create(name="bench-serve", scopes=["read"])
        paths = [
            f"/api/v1/customers/{customers[i % len(customers)]}/recommendations?k={K}"
            for i in range(args.requests)
        ]
        server = serve(args, env)
        try:
            load(
                args.port, token, paths[: 50 * args.workers], clients=args.workers, k=K
            )  # Warm-up.
            print(
                f"\nGET customers/<id>/recommendations, gunicorn --workers {args.workers} "
                f"--threads {args.threads} ({'sync' if args.threads == 1 else 'gthread'}), "
                f"{len(customers)} customers, k={K}:"
            )
            print("  clients  requests  errors   req/s   p50 ms  p90 ms  p99 ms  max ms  p50/base")
            figures = []
            for clients in (int(c) for c in args.clients.split(",")):
                f = load(args.port, token, paths, clients, k=K)
                figures.append(f)
                print(
                    f"  {clients:7d}  {f['requests']:8d}  {f['errors']:6d}  {f['rps']:6.0f}  "
                    f"{f['p50_ms']:7.2f} {f['p90_ms']:7.2f} {f['p99_ms']:7.2f} "
                    f"{f['max_ms']:7.1f}  x{f['p50_ms'] / base_ms:.2f}"
                )
                if f["errors"]:
                    print(f"    first error: {f['first_error']}")
        finally:
            server.terminate()
            server.wait(timeout=30)
        print("\n" + json.dumps({"baseline_ms": round(base_ms, 2), "runs": [
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in f.items()
             if k != "first_error"} for f in figures]}))  # fmt: skip
    finally:
        connection.close()
        if not args.keep_db and not args.reuse_db:
            drop_database(args.server, args.database)


if __name__ == "__main__":
    main()
