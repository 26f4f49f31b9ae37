"""Serving latency and throughput of ``GET /api/v1/customers/<id>/recommendations``.

    nice -n 10 .venv/bin/python bench/serve.py [--requests 4000] [--clients 2,4] [--reuse-db]

Target (2-core machine): p99 <= 20 ms at >= 200 requests/s with 0 errors.

What it does, in its own database (``recsite_bench_serve`` by default; dropped at the end
unless ``--keep-db``; ``--reuse-db`` keeps a prepared one between runs):

1. Imports the real UCI Online Retail export with ``manage.py import_online_retail``, embeds and
   indexes the products with the configured model (``manage.py reindex``), and fits the
   recommendation engine (``manage.py train``). ``--shop DIR`` imports that folder in the
   interchange format instead (``manage.py import DIR``; e.g. ``../shared/data/amazon_office``,
   where ``train``'s validation gate serves the sequential source).
2. Baseline, measured in the same run: the service behind the endpoint
   (``customer_recommendations``) called in this process, one request at a time, no HTTP.
3. Starts gunicorn on loopback (one sync worker per core by default, keep-alive) and loads the
   endpoint from separate client processes, each with one keep-alive ``http.client``
   connection, over a fixed sample of real customer ids (seeded), k=10. Each client count is a
   closed loop: a client sends its next request when the previous answer has arrived. Every
   answer must be a 200 with 10 results.

Printed: p50/p90/p99/max latency as seen by the clients, sustained requests/s, errors, the
ratio of the per-request time to the in-process baseline, and the CPU time a request cost the
gunicorn processes (master and workers) and the PostgreSQL backends serving them (read from
``/proc`` around each run; Linux only): steadier than requests/s on a shared machine, since
another tenant's load slows a run without adding to its processes' CPU time.

``--relationships PER_CUSTOMER`` (issue 19) first writes seeded relationships among the shop's
customers through the ingestion service (``relationships_upsert``, idempotent: the same seed
writes the same edges again as unchanged), then measures two arms in the same database, each a
configuration version saved through the service as the tuning page saves one: the active
configuration with the social source off (weight 0: no network is read) and on (the active
weight, or the shipped default when the active one has it off). Each arm runs the baseline and
every client count; ``--rounds`` repeats both, alternating which goes first, and the original
configuration is saved back at the end. The edges: each customer's out-degree is drawn from a
lognormal (sigma 1) with mean ``PER_CUSTOMER``, rounded down (some have none, a few many), and
its targets are drawn without replacement with Zipf weights (exponent 0.7) over a seeded order of
the customers, so a few customers are followed by many, as in real follower graphs; 90 % of
rows are ``follows``, 10 % ``friend`` (two edges), all of weight 1.
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
    cpu_of,
    cpu_seconds,
    cpu_used,
    database_backends,
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
    parser.add_argument(
        "--relationships",
        type=float,
        default=0.0,
        metavar="PER_CUSTOMER",
        help="Write seeded edges (mean out-degree) and time the social source off and on.",
    )
    parser.add_argument("--rounds", type=int, default=1, help="With --relationships: passes.")
    parser.add_argument(
        "--shop",
        type=Path,
        help="Serve this shop (a folder in the interchange format: products.csv, events.csv) "
        "instead of Online Retail.",
    )
    parser.add_argument("--reuse-db", action="store_true", help="Use a prepared database as is.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database afterwards.")
    return parser.parse_args()


def prepare(shop: Path | None) -> None:
    """Import (the Online Retail export, or ``shop``: a folder in the interchange format), embed
    and index, train."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    importing = (
        ("import_online_retail", [str(RETAIL_EXPORT), "--no-progress"])
        if shop is None
        else ("import", [str(shop), "--no-progress"])
    )
    for name, args in (
        importing,
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


def relationships_write(per_customer: float, *, seed: int = 0) -> None:
    """Seeded edges among the customers with events, written through the ingestion service."""
    import numpy as np
    from django.db.models import Count, Max

    from recommender.models import Customer
    from social.models import Relationship
    from social.records import parse_relationship
    from social.services import RELATIONSHIP_CHUNK_SIZE, RelationshipCounts, relationships_upsert

    ids = sorted(Customer.objects.filter(events__isnull=False).distinct().values_list(
        "external_id", flat=True))  # fmt: skip
    n = len(ids)
    rng = np.random.default_rng(seed)
    sigma = 1.0
    degrees = np.minimum(
        n - 1,
        np.floor(rng.lognormal(np.log(per_customer) - sigma**2 / 2, sigma, size=n)).astype(int),
    )
    popularity = 1.0 / np.arange(1, n + 1) ** 0.7
    popularity = popularity[np.argsort(rng.permutation(n))] / popularity.sum()
    received = datetime(2011, 12, 1, tzinfo=UTC)  # Fixed: the same seed writes the same rows.
    records = []
    for source, degree in enumerate(degrees):
        if degree == 0:
            continue
        targets = [t for t in rng.choice(n, size=degree + 1, replace=False, p=popularity)
                   if t != source][:degree]  # fmt: skip
        for target in targets:
            kind = "friend" if rng.random() < 0.1 else "follows"
            records.append(parse_relationship(
                {"customer_id": ids[source], "target_customer_id": ids[int(target)],
                 "type": kind}, now=received))  # fmt: skip
    counts = RelationshipCounts()
    started = time.perf_counter()
    for start in range(0, len(records), RELATIONSHIP_CHUNK_SIZE):
        counts.add(relationships_upsert(records=records[start : start + RELATIONSHIP_CHUNK_SIZE]))
    stored = Relationship.objects.count()
    out_degrees = sorted(
        Relationship.objects.values("source_id").annotate(c=Count("pk")).values_list("c", flat=True)
    )
    in_max = (
        Relationship.objects.values("target_id").annotate(c=Count("pk")).aggregate(m=Max("c"))["m"]
    )
    print(
        f"relationships: {len(records):,} rows for {n:,} customers written in "
        f"{time.perf_counter() - started:.1f} s ({counts.created:,} edges created, "
        f"{counts.unchanged:,} unchanged, {counts.duplicates:,} duplicates); {stored:,} edges "
        f"stored; {len(out_degrees):,} customers ({len(out_degrees) / n:.0%}) have out-edges "
        f"(median {statistics.median(out_degrees):.0f}, p90 "
        f"{out_degrees[int(0.9 * len(out_degrees))]}, max {out_degrees[-1]}); most followed: "
        f"{in_max} in-edges"
    )


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


def measure(
    args: argparse.Namespace, arm: str, customers: list[str], token: str, paths: list[str]
) -> dict[str, object]:
    """The in-process baseline, then every client count over HTTP; printed and returned."""
    base = baseline(customers, repeat=min(args.requests, 1000))
    base_ms = statistics.median(base) * 1000
    print(
        f"\n{arm} (load average {os.getloadavg()[0]:.1f})\nbaseline: the service in-process, "
        f"one at a time, {len(base)} calls: median {base_ms:.2f} ms, p99 "
        f"{statistics.quantiles(base, n=100, method='inclusive')[98] * 1000:.2f} ms"
    )
    print(
        f"GET customers/<id>/recommendations, gunicorn --workers {args.workers} "
        f"--threads {args.threads} ({'sync' if args.threads == 1 else 'gthread'}), "
        f"{len(customers)} customers, k={K}:"
    )
    print(
        "  clients  requests  errors   req/s   p50 ms  p90 ms  p99 ms  max ms  p50/base"
        "  CPU ms/request: gunicorn  PostgreSQL"
    )
    figures = []
    for clients in (int(c) for c in args.clients.split(",")):
        # The workers' own database connections: opened by the warm-up, kept for
        # CONN_MAX_AGE (60 s), then replaced: a backend that closes mid-run is marked.
        workers = cpu_seconds(args.server_pid)
        databases = cpu_of(database_backends(args.server, args.database))
        f = load(args.port, token, paths, clients, k=K)
        gunicorn, _ = cpu_used(workers, cpu_seconds(args.server_pid))
        postgres, closed = cpu_used(
            databases, cpu_of(database_backends(args.server, args.database))
        )
        requests = float(f["requests"])
        f["gunicorn_cpu_ms"] = 1000 * gunicorn / requests
        f["postgres_cpu_ms"] = 1000 * postgres / requests
        f["postgres_note"] = f" ({closed} closed: under)" if closed else ""
        figures.append(f)
        print(
            f"  {clients:7d}  {f['requests']:8d}  {f['errors']:6d}  {f['rps']:6.0f}  "
            f"{f['p50_ms']:7.2f} {f['p90_ms']:7.2f} {f['p99_ms']:7.2f} "
            f"{f['max_ms']:7.1f}  x{f['p50_ms'] / base_ms:.2f}"
            f"  {f['gunicorn_cpu_ms']:23.2f}  {f['postgres_cpu_ms']:10.2f}{f['postgres_note']}"
        )
        if f["errors"]:
            print(f"    first error: {f['first_error']}")
    return {"arm": arm, "baseline_ms": round(base_ms, 2), "runs": [
        {k: (round(v, 2) if isinstance(v, float) else v) for k, v in f.items()
         if k not in ("first_error", "postgres_note")} for f in figures]}  # fmt: skip


def version_served(
    args: argparse.Namespace, token: str, paths: list[str], customers: list[str], version: int
) -> None:
    """Wait until this process and every answer of the server (fresh connections, so any
    worker) serve configuration ``version``; they check every RECSITE_INDEX_REFRESH_SECONDS."""
    import http.client

    from recommender.models import Customer
    from recommender.services.recommendations import customer_recommendations

    customer = Customer.objects.get(external_id=customers[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {customer_recommendations(customer=customer, k=K, log=False).config_version}
        for path in paths[: 10 * args.workers]:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            seen.add(json.loads(conn.getresponse().read())["config_version"])
            conn.close()
        if seen == {version}:
            return
        time.sleep(1)
    raise SystemExit(f"configuration v{version} not served within 60 s (saw {sorted(seen)})")


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
    from recommender.ml.engine.config import EngineConfig
    from recommender.models import EngineBuild, Event, Product
    from recommender.services.recommendations import (
        recommendation_config_active,
        recommendation_config_save,
    )

    try:
        if not reuse:
            print("preparing the database:")
            prepare(args.shop)
        if args.relationships > 0:
            relationships_write(args.relationships)
        with connection.cursor() as cursor:
            # Fresh statistics, as autovacuum would have them in a running shop: without them
            # the planner guesses ~150 events per customer and sorts all of a heavy customer's
            # events (7 ms for 7,800) instead of reading the newest 200 off the index. VACUUM
            # sets the visibility map autovacuum would have set, so the index-only reads of
            # events (the customer's, their network's) visit no heap page.
            cursor.execute("VACUUM ANALYZE")
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
        arms: dict[str, EngineConfig | None] = {"active configuration": None}
        original = recommendation_config_active()
        if args.relationships > 0:
            active = EngineConfig.from_dict(original.config)
            on = active.source_weights.get("social", 0.0) or EngineConfig().source_weights["social"]
            weights = active.source_weights
            arms = {
                "social off": active.replace(source_weights={**weights, "social": 0.0}),
                f"social on ({on:g})": active.replace(source_weights={**weights, "social": on}),
            }
        _, token = api_token_create(name="bench-serve", scopes=["read"])
        paths = [
            f"/api/v1/customers/{customers[i % len(customers)]}/recommendations?k={K}"
            for i in range(args.requests)
        ]
        server = serve(args, env)
        args.server_pid = server.pid
        results: list[dict[str, object]] = []
        try:
            load(
                args.port, token, paths[: 50 * args.workers], clients=args.workers, k=K
            )  # Warm-up.
            for round_number in range(args.rounds if args.relationships > 0 else 1):
                order = list(arms) if round_number % 2 == 0 else list(reversed(arms))
                for arm in order:
                    config = arms[arm]
                    if config is not None:
                        saved = recommendation_config_save(
                            config=config, note=f"bench/serve.py: {arm}"
                        )
                        version_served(args, token, paths, customers, saved.version)
                    results.append(measure(args, arm, customers, token, paths))
        finally:
            server.terminate()
            server.wait(timeout=30)
            if args.relationships > 0:
                recommendation_config_save(
                    config=original.config, note=f"bench/serve.py: restored v{original.version}"
                )
        if args.relationships > 0:
            print("\nsocial on / social off, per client count (medians over rounds):")
            off_arm, on_arm = list(arms)
            for clients in (int(c) for c in args.clients.split(",")):
                ratio, medians = {}, {}
                for key in ("rps", "p50_ms", "p99_ms", "gunicorn_cpu_ms"):
                    values = {
                        arm: statistics.median(
                            run[key]
                            for r in results
                            if r["arm"] == arm
                            for run in r["runs"]
                            if run["clients"] == clients  # type: ignore[attr-defined]
                        )
                        for arm in (on_arm, off_arm)
                    }
                    ratio[key] = values[on_arm] / values[off_arm]
                    medians[key] = values
                print(
                    f"  {clients} clients: req/s x{ratio['rps']:.2f}, "
                    f"p50 x{ratio['p50_ms']:.2f}, p99 x{ratio['p99_ms']:.2f}, gunicorn CPU a "
                    f"request x{ratio['gunicorn_cpu_ms']:.2f} "
                    f"({medians['gunicorn_cpu_ms'][on_arm]:.2f} against "
                    f"{medians['gunicorn_cpu_ms'][off_arm]:.2f} ms)"
                )
            base = {
                arm: statistics.median(r["baseline_ms"] for r in results if r["arm"] == arm)
                for arm in (on_arm, off_arm)
            }
            print(f"  in-process baseline median: x{base[on_arm] / base[off_arm]:.2f}")
        print("\n" + json.dumps(results))
    finally:
        connection.close()
        if not args.keep_db and not args.reuse_db:
            drop_database(args.server, args.database)


if __name__ == "__main__":
    main()
