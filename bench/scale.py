"""The scale benchmark: a shop of 10k, 100k and 1M products, from import to API.

    flock /tmp/recsite-heavy.lock nice -n 5 .venv/bin/python bench/scale.py \
        [--sizes 10k,100k,1m] [--shops /work/bench-data] [--reuse-db] [--keep-db] [--json F]

For each size, in its own PostgreSQL database (``bench_scale_<size>``), with the shop
``bench/shopgen.py`` generates (``shop-<size>`` under ``--shops``: 10k products, 10k customers,
500k events; 100k, 100k, 5M; 1M, 1M, 50M; generated when missing):

1. **import**: ``manage.py import_products``, then ``manage.py import_events`` on the events
   file: events per second.
2. **index**: ``manage.py reindex`` with the weight-free hashing stand-in at 384 dimensions (the
   packaged model's width; the real model's speed is ``bench/embed.py``'s): embedding and the
   hnswlib build.
3. **fit**: ``manage.py train``: the fit's time, the plan's memory estimate and its measured peak
   RSS (the fit step alone: ``EngineBuild.memory``), and the whole command's time and peak RSS
   (with the tuning page's sample, which fits the engine a second time on a split).
4. **recommend, in-process**: ``customer_recommendations`` (k = 10) for customers with at least
   50 events, one at a time, as the endpoint calls it (history read, both stages, products
   check, log insert), and the engine's two stages alone on the same histories.
5. **API**: gunicorn with the repository's ``gunicorn.conf.py`` and 4 workers; closed-loop
   client processes on keep-alive connections; every answer must be a 200 with 10 results.
   Requests per second, p50/p99, and each worker's private and shared memory.
6. **dashboard**: each page's time through Django's test client (``bench/dashboard.py``).

The curve compares each size's per-request figures with the smallest size's, measured in the
same run: the acceptance is flat within 2x from 10k to 1M products.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _support import (  # noqa: E402  (bench/ is the script's own folder on sys.path)
    add_port_argument,
    cpu_model,
    database_exists,
    drop_database,
    gunicorn_start,
    load,
    process_memory,
    recreate_database,
    sampled_customers,
)

SERVER = "postgres://postgres@127.0.0.1:5432"
SIZES = {
    "10k": (10_000, 10_000, 500_000),
    "100k": (100_000, 100_000, 5_000_000),
    "1m": (1_000_000, 1_000_000, 50_000_000),
}
K = 10
MIN_EVENTS = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--shops", default="/work/bench-data", help="Folder of shop-<size>.")
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL (no database).")
    parser.add_argument("--reuse-db", action="store_true", help="Keep a prepared database.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the databases afterwards.")
    parser.add_argument("--customers", type=int, default=300, help="Customers timed in-process.")
    parser.add_argument("--requests", type=int, default=4000, help="API requests per run.")
    parser.add_argument(
        "--clients", default="2,4", help="Client process counts of the API runs, one run each."
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers.")
    add_port_argument(parser)
    parser.add_argument("--json", dest="json_path", help="Write every figure here.")
    parser.add_argument(
        "--skip",
        default="",
        help="Comma-separated steps to skip: api, dashboard; fit (prepares the database, import "
        "and index, and stops there: a later --reuse-db run trains and measures)",
    )
    parser.add_argument("--inprocess", help=argparse.SUPPRESS)  # Internal: one size's step 4.
    return parser.parse_args()


# Commands, with their wall time and peak memory ---------------------------------------------


def run(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``manage.py`` ``command``; (seconds, its peak RSS in bytes, stdout). Fails loudly."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command], cwd=REPO, env=env, stdout=out, stderr=err
        )
        # wait4 reaps this child and gives its own resource usage (ru_maxrss in KiB).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(command)} failed:\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss * 1024, out.read()


def shop_folder(args: argparse.Namespace, size: str) -> Path:
    folder = Path(args.shops) / f"shop-{size}"
    if not (folder / "events.csv").exists():
        products, customers, events = SIZES[size]
        print(f"  generating {folder} (bench/shopgen.py)", flush=True)
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "shopgen.py"), "--products", str(products),
             "--customers", str(customers), "--events", str(events), "--out", str(folder)],
            check=True,
        )  # fmt: skip
    return folder


def environment(args: argparse.Namespace, size: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{args.server}/bench_scale_{size}",
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "RECSITE_VAR_DIR": str(Path(args.shops) / f"var-scale-{size}"),
        "RECSITE_EMBEDDER": "hashing",
        "RECSITE_HASHING_DIMENSION": "384",
        "RECSITE_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }


def prepare(
    args: argparse.Namespace, size: str, env: dict[str, str], skip: set[str]
) -> dict[str, Any]:
    """Steps 1 to 3 (without 3 where ``skip`` names ``fit``); their figures. With
    ``--reuse-db`` a step already done in that database (events imported, an index or engine
    build ready) is not repeated."""
    folder = shop_folder(args, size)
    database = f"bench_scale_{size}"
    done = _done(args, database) if args.reuse_db else set()
    if not done:
        recreate_database(args.server, database)
    run(["migrate", "--no-input", "-v", "0"], env)
    figures: dict[str, Any] = {}
    if "import" not in done:
        seconds, _, _ = run(["import_products", str(folder / "products.csv"), "--no-progress"],
                            env)  # fmt: skip
        figures["import_products_s"] = round(seconds, 1)
        events = SIZES[size][2]
        seconds, peak, _ = run(["import_events", str(folder / "events.csv"), "--no-progress"], env)
        figures["import_events_s"] = round(seconds, 1)
        figures["import_events_per_s"] = round(events / seconds)
        figures["import_peak_rss_mb"] = round(peak / 2**20)
        print(f"  import: {events:,} events in {seconds:.0f} s ({events / seconds:,.0f}/s)",
              flush=True)  # fmt: skip
        # What autovacuum does to an insert-only table some time after a bulk load, done now
        # so the reads below see the state production settles in (statistics, visibility map).
        started = time.perf_counter()
        import psycopg

        with psycopg.connect(f"{args.server}/{database}", autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) recommender_event")
        figures["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
    if "index" not in done:
        seconds, peak, _ = run(["reindex", "--no-progress"], env)
        figures["reindex_s"] = round(seconds, 1)
        figures["reindex_peak_rss_mb"] = round(peak / 2**20)
        print(f"  reindex: {seconds:.0f} s, peak {peak / 2**30:.1f} GiB", flush=True)
    if "fit" not in done and "fit" not in skip:
        seconds, peak, _ = run(["train", "--no-progress"], env)
        figures["train_s"] = round(seconds, 1)
        figures["train_peak_rss_mb"] = round(peak / 2**20)
        print(f"  train: {seconds:.0f} s, peak {peak / 2**30:.1f} GiB", flush=True)
    return figures


def _done(args: argparse.Namespace, database: str) -> set[str]:
    """The steps a prepared database has done already."""
    if not database_exists(args.server, database):
        return set()
    import psycopg

    done = set()
    with psycopg.connect(f"{args.server}/{database}", autocommit=True) as conn:

        def count(sql: str) -> int:
            try:
                row = conn.execute(sql).fetchone()
            except psycopg.Error:
                return 0
            return int(row[0]) if row else 0

        if count("SELECT count(*) FROM (SELECT 1 FROM recommender_event LIMIT 1) AS e"):
            done.add("import")
        if count("SELECT count(*) FROM recommender_indexbuild WHERE status = 'ready'"):
            done.add("index")
        if count("SELECT count(*) FROM recommender_enginebuild WHERE status = 'ready'"):
            done.add("fit")
    return done


# Step 4, in a process of its own (Django set up on that size's database) -----------------------


def inprocess(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.db import connection
    from threadpoolctl import threadpool_limits

    from recommender.models import Customer, EngineBuild, IndexBuild
    from recommender.selectors.recommendations import customer_recent_events
    from recommender.services import recommendations as service
    from recommender.services.recommendations.lists import _history

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    engine_build = EngineBuild.objects.filter(status="ready").latest()
    index_build = IndexBuild.objects.filter(status="ready").latest()
    chosen: list[Customer] = sampled_customers(args.customers, min_events=MIN_EVENTS)
    for customer in chosen[:20]:  # Warm: maps the engine, loads the index.
        service.customer_recommendations(customer=customer, k=K)
    served: list[float] = []
    engine_only: list[float] = []
    history_lengths: list[int] = []
    for customer in chosen:
        started = time.perf_counter()
        result = service.customer_recommendations(customer=customer, k=K)
        served.append(time.perf_counter() - started)
        assert len(result.items) == K, f"{customer.external_id}: {len(result.items)} items"
    serving = service.serving_engine()
    ann = service.serving_ann(serving)
    with threadpool_limits(limits=1, user_api="blas"):
        for customer in chosen:
            events = customer_recent_events(customer=customer)
            history, now = _history(serving, events)
            history_lengths.append(len(history.product_ids))
            started = time.perf_counter()
            serving.engine.recommend(history, k=K, now=now, ann=ann)
            engine_only.append(time.perf_counter() - started)
    q = statistics.quantiles
    print(
        json.dumps(
            {
                "customers": len(chosen),
                "history_mean": round(statistics.mean(history_lengths), 1),
                "service_p50_ms": round(statistics.median(served) * 1000, 2),
                "service_p99_ms": round(q(served, n=100, method="inclusive")[98] * 1000, 2),
                "engine_p50_ms": round(statistics.median(engine_only) * 1000, 2),
                "engine_p99_ms": round(q(engine_only, n=100, method="inclusive")[98] * 1000, 2),
                "fit_s": engine_build.fit_seconds,
                "fit_collaborative": engine_build.collaborative,
                "fit_estimate_mb": round(engine_build.memory["estimate"]["total"] / 2**20),
                "fit_peak_rss_mb": round((engine_build.memory["peak_rss"] or 0) / 2**20),
                "index_build_s": index_build.build_seconds,
                "index_items": index_build.item_count,
                "token": _token(),
                "paths": [
                    f"/api/v1/customers/{c.external_id}/recommendations?k={K}" for c in chosen
                ],
            }
        )
    )


def _token() -> str:
    from accounts.services import api_token_create

    _, token = api_token_create(name=f"bench-scale-{time.time_ns()}", scopes=["read"])
    return token


# Steps 5 and 6 ---------------------------------------------------------------------------------


def api(args: argparse.Namespace, env: dict[str, str], token: str, paths: list[str]) -> dict:
    """One closed-loop run per client count; the workers' memory after the last."""
    extra = ["-c", str(REPO / "gunicorn.conf.py"), "--keep-alive", "30"]
    server = gunicorn_start(port=args.port, workers=args.workers, env=env, extra=extra)
    figures: dict[str, Any] = {"runs": []}
    try:
        requests = [paths[i % len(paths)] for i in range(args.requests)]
        load(args.port, token, requests[:200], clients=2, k=K)  # Warm every worker.
        for clients in (int(c) for c in str(args.clients).split(",")):
            run_figures = load(args.port, token, requests, clients=clients, k=K)
            run_figures.pop("first_error", None)
            figures["runs"].append(run_figures)
        memory = process_memory(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    workers = [m for m in memory if m["role"] == "worker"]
    figures["worker_private_mb"] = [m["private"] for m in workers]
    figures["worker_shared_mb"] = [m["shared"] for m in workers]
    figures["server_pss_mb"] = sum(m["pss"] for m in memory)
    return figures


def dashboard(env: dict[str, str]) -> dict[str, dict[str, float]]:
    """bench/dashboard.py in a process on this size's database: each page's first and median
    answer time (ms)."""
    output = subprocess.run(
        [sys.executable, str(REPO / "bench" / "dashboard.py"), "--json", "--repeat", "3"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    args = parse_args()
    if args.inprocess:
        inprocess(args)
        return
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"--sizes: unknown size(s) {unknown}; expected some of {list(SIZES)}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    for size in sizes:
        print(f"\n{size}: {SIZES[size][0]:,} products, {SIZES[size][2]:,} events", flush=True)
        env = environment(args, size)
        figures: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 1)}
        database = f"bench_scale_{size}"
        figures.update(prepare(args, size, env, skip))
        if "fit" in skip:
            print("  prepared (--skip fit): nothing measured past the index", flush=True)
            results[size] = figures
            continue
        step = subprocess.run(
            [sys.executable, __file__, "--inprocess", size, "--customers", str(args.customers)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        if step.returncode != 0:
            raise SystemExit(f"the in-process measurement failed:\n{step.stderr[-3000:]}")
        measured = step.stdout
        step4 = json.loads(measured.strip().splitlines()[-1])
        token, paths = step4.pop("token"), step4.pop("paths")
        figures.update(step4)
        print(
            f"  in-process: service p50 {step4['service_p50_ms']} ms, p99 "
            f"{step4['service_p99_ms']} ms; engine p50 {step4['engine_p50_ms']} ms, p99 "
            f"{step4['engine_p99_ms']} ms (histories of {step4['history_mean']} events)",
            flush=True,
        )
        if "api" not in skip:
            figures["api"] = api(args, env, token, paths)
            for a in figures["api"]["runs"]:
                print(
                    f"  API, {a['clients']} clients: {a['rps']:.0f} req/s, p50 "
                    f"{a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, {a['errors']} errors",
                    flush=True,
                )
            print(f"  workers' private memory {figures['api']['worker_private_mb']} MiB, shared "
                  f"{figures['api']['worker_shared_mb']} MiB", flush=True)  # fmt: skip
        if "dashboard" not in skip:
            figures["dashboard_ms"] = dashboard(env)
            pages = figures["dashboard_ms"]
            first = max(pages.items(), key=lambda kv: kv[1]["first_ms"])
            median = max(pages.items(), key=lambda kv: kv[1]["median_ms"])
            print(
                f"  dashboard ({len(pages)} pages): slowest median {median[0]} "
                f"{median[1]['median_ms']} ms; slowest first answer {first[0]} "
                f"{first[1]['first_ms']} ms",
                flush=True,
            )
        results[size] = figures
        if not args.keep_db and not args.reuse_db:
            drop_database(args.server, database)
    if "fit" in skip:
        return
    smallest = results[sizes[0]]
    print("\nper-request figures relative to the smallest size:")
    for size in sizes:
        f = results[size]
        ratios = {
            key: round(f[key] / smallest[key], 2)
            for key in ("service_p50_ms", "service_p99_ms", "engine_p50_ms", "engine_p99_ms")
            if smallest.get(key)
        }
        if "api" in f and "api" in smallest:
            for mine, base in zip(f["api"]["runs"], smallest["api"]["runs"], strict=False):
                ratios[f"api_p99_{mine['clients']}_clients"] = round(
                    mine["p99_ms"] / base["p99_ms"], 2
                )
        f["relative_to_smallest"] = ratios
        print(f"  {size}: {ratios}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
        print(f"\nWrote {args.json_path}")


if __name__ == "__main__":
    main()
