"""Memory of the web processes: per-worker private and shared RSS with a large vector index.

    flock /tmp/recsite-heavy.lock nice -n 5 .venv/bin/python bench/memory.py \
        [--products 100000] [--workers 4] [--requests 400] [--reuse-db] [--keep-db] [--json F]

Target (docs/deployment.md): with 4 gunicorn workers at 1M products, each worker's private memory
(Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) stays at or under 1 GB.

What it does, in its own database (``bench_topology_memory_<products>``; dropped at the end
unless ``--keep-db``; ``--reuse-db`` uses a prepared one as is):

1. Creates ``--products`` products, and stores vectors for a sample of them (the products the
   similar-products requests ask about). The index holds one 384-dimensional vector per product:
   a cheap deterministic stand-in (seeded random unit vectors, the size of all-MiniLM-L6-v2's),
   built once with hnswlib (M 16, ``--ef-construction`` 40: the graph's size depends on M, not
   on ef_construction; a low one only makes the stand-in quicker to build) and cached under
   ``var/bench-memory/`` for later runs. It is published through the artifact store as an
   index build, as ``manage.py reindex`` would publish one.
2. Starts gunicorn with the repository's ``gunicorn.conf.py`` (``--workers`` workers, the real
   all-MiniLM-L6-v2 query embedder) and sends ``--requests`` semantic searches and as many
   similar-products requests from 4 client threads; recommendations too when the database
   holds an engine build.
3. Reports, for the master, each worker and the build watcher: RSS, PSS, shared and private
   memory, and whether torch is loaded in it.
4. Publishes a second build (the same graph under a new build: the roll is measured, not the
   build), waits until every worker is a new one that inherited it, samples the total PSS of
   the server during the roll, sends the same traffic and reports again.

The machine must have room for the index twice (the old workers keep the previous build until
they exit) plus the bench process's copy while it publishes: the script checks MemAvailable
first and refuses with the size it needs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"
DIM = 384
SIMILAR_SAMPLE = 1000
MODEL_NAME = "all-MiniLM-L6-v2"
_VOCABULARY = (
    "red white blue green black vintage glass ceramic wooden metal paper party bag mug lamp "
    "candle holder cushion cover frame clock tin box jar set kit pen notebook label tape ink "
    "printer cartridge stapler folder desk chair light garden heart star flower bird christmas"
)
WORDS = _VOCABULARY.split()

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _support import (  # noqa: E402  (bench/ is the script's own folder on sys.path)
    add_port_argument,
    cpu_model,
    database_exists,
    drop_database,
    gunicorn_start,
    process_memory,
    recreate_database,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400, help="Of each kind, per phase.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent client threads.")
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL (no database).")
    add_port_argument(parser)
    parser.add_argument("--reuse-db", action="store_true", help="Use a prepared database as is.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    return parser.parse_args()


# Setup ------------------------------------------------------------------------------------------


def title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6)))


def prepare(products: int) -> None:
    """Products, and stored vectors for the similar-products sample (older than any build)."""
    import numpy as np
    from django.core.management import call_command

    from recommender.models import Product, ProductEmbedding

    call_command("migrate", verbosity=0)
    rng = random.Random(0)
    started = time.perf_counter()
    chunk = 20_000
    for start in range(0, products, chunk):
        Product.objects.bulk_create(
            [
                Product(external_id=f"P{i:07d}", title=title(rng), embedding_stale=False)
                for i in range(start, min(products, start + chunk))
            ],
            batch_size=chunk,
        )
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    vectors = unit_vectors(len(pks))
    sample = sorted(random.Random(1).sample(range(len(pks)), min(SIMILAR_SAMPLE, len(pks))))
    ProductEmbedding.objects.bulk_create(
        [
            ProductEmbedding(
                product_id=pks[i], model_name=MODEL_NAME, text_hash="bench", dimension=DIM,
                vector=np.asarray(vectors[i], dtype="<f4").tobytes(),
            )
            for i in sample
        ]
    )  # fmt: skip
    print(f"  {products:,} products and {len(sample):,} stored vectors in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip


def unit_vectors(count: int) -> Any:
    import numpy as np

    vectors = np.random.default_rng(0).standard_normal((count, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def graph_path(products: int, ef_construction: int) -> Path:
    folder = REPO / "var" / "bench-memory"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"graph-{products}-{DIM}-m16-ef{ef_construction}.json"


def graph_build(products: int, ef_construction: int) -> Path:
    """The stand-in graph over every product, built once and cached."""
    from recommender.ml.vector_index import VectorIndex
    from recommender.models import Product

    path = graph_path(products, ef_construction)
    if path.exists():
        return path
    pks = Product.objects.order_by("pk").values_list("pk", flat=True)
    import numpy as np

    ids = np.fromiter(pks, dtype=np.int64)
    started = time.perf_counter()
    index = VectorIndex.build(
        ids=ids, vectors=unit_vectors(len(ids)), m=16, ef_construction=ef_construction
    )
    index.save(path)
    print(f"  graph of {len(ids):,} vectors built in {time.perf_counter() - started:.0f} s "
          f"({os.getloadavg()[0]:.2f} load)")  # fmt: skip
    return path


def publish(graph: Path, ef_construction: int) -> int:
    """Publish the cached graph as a new READY index build, through the artifact store."""
    from django.utils import timezone

    from jobs.choices import BuildStatus
    from jobs.services.artifact_store import unique_name
    from jobs.services.artifacts import artifact_publishing
    from recommender.ml.vector_index import VectorIndex
    from recommender.models import IndexBuild
    from recommender.services.index import index_builds_prune

    build = IndexBuild.objects.create(
        status=BuildStatus.BUILDING, model_name=MODEL_NAME, m=16,
        ef_construction=ef_construction, ef_search=128,
    )  # fmt: skip
    index = VectorIndex.load(graph)
    with artifact_publishing(kind="index", name=unique_name("build", build.pk, ".json")) as pub:
        index.save(pub.main)
    build.status, build.path = BuildStatus.READY, pub.location
    build.dimension, build.item_count = index.dim, len(index)
    build.finished_at = timezone.now()
    build.save()
    del index
    gc.collect()
    index_builds_prune()
    return build.pk


# Measuring --------------------------------------------------------------------------------------


def print_memory(label: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{label}\n  {'process':<8} {'pid':>7} {'RSS':>7} {'PSS':>7} {'shared':>7} "
          f"{'private':>8}  torch   (MiB)")  # fmt: skip
    for r in rows:
        print(f"  {r['role']:<8} {r['pid']:>7} {r['rss']:>7} {r['pss']:>7} {r['shared']:>7} "
              f"{r['private']:>8}  {'yes' if r['torch'] else 'no'}")  # fmt: skip
    print(f"  total PSS {sum(r['pss'] for r in rows):,} MiB")


def serving_status(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health/serving")
    return dict(json.loads(conn.getresponse().read()))


def traffic(port: int, token: str, paths: list[str], clients: int) -> dict[str, float]:
    """Send every path once from ``clients`` threads (keep-alive); latency percentiles in ms."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def run(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for path in share:
            sent = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = response.read()
            with lock:
                latencies.append(time.perf_counter() - sent)
                if response.status != 200:
                    errors.append(f"{response.status} {path}: {body[:200]!r}")

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, [paths[i::clients] for i in range(clients)]))
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
    }


def request_paths(requests: int, with_engine: bool) -> list[str]:
    from recommender.models import Customer, Product

    rng = random.Random(2)
    similar = list(
        Product.objects.filter(embedding__isnull=False).values_list("external_id", flat=True)
    )
    paths = [f"/api/v1/products/search?q={'+'.join(title(rng).split())}&k=10"
             for _ in range(requests)]  # fmt: skip
    paths += [f"/api/v1/products/{rng.choice(similar)}/similar?k=10" for _ in range(requests)]
    if with_engine:
        customers = list(Customer.objects.values_list("external_id", flat=True)[:1000])
        paths += [f"/api/v1/customers/{rng.choice(customers)}/recommendations?k=10"
                  for _ in range(requests)]  # fmt: skip
    rng.shuffle(paths)
    return paths


def check_room(products: int) -> None:
    index_mib = products * (DIM * 4 + 16 * 2 * 4 + 4 + 8 + 64) / 2**20
    need = 3 * index_mib + 4 * 600 + 1024
    with open("/proc/meminfo") as handle:
        available = next(int(line.split()[1]) for line in handle if line.startswith("MemAvail"))
    if available / 1024 < need:
        raise SystemExit(f"needs about {need:,.0f} MiB of free memory (the index, about "
                         f"{index_mib:,.0f} MiB, three times, and the workers); "
                         f"{available / 1024:,.0f} MiB available")  # fmt: skip


# Main -------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    check_room(args.products)
    database = f"bench_topology_memory_{args.products}"
    artifacts = REPO / "var" / "bench-memory" / f"artifacts-{args.products}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-memory"),
        "DATABASE_URL": f"{args.server}/{database}",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13"),
        "RECSITE_ARTIFACT_STORE": "filesystem",
        "RECSITE_ARTIFACT_DIR": str(artifacts),
        "RECSITE_EMBEDDER": "transformer",
        "RECSITE_INDEX_REFRESH_SECONDS": "2",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    os.environ.update(env)
    import django

    if not (args.reuse_db and database_exists(args.server, database)):
        recreate_database(args.server, database)
        shutil.rmtree(artifacts, ignore_errors=True)  # Builds of an earlier database.
        django.setup()
        prepare(args.products)
    else:
        django.setup()
    from django.db import connections

    from accounts.services import api_token_create
    from jobs.choices import BuildStatus
    from recommender.models import EngineBuild

    graph = graph_build(args.products, args.ef_construction)
    first = publish(graph, args.ef_construction)
    _, token = api_token_create(name="bench-memory", scopes=["read"])
    with_engine = EngineBuild.objects.filter(status=BuildStatus.READY).exists()
    paths = request_paths(args.requests, with_engine)
    connections.close_all()

    index_mib = json.loads(graph.read_text())["data_bytes"] / 2**20
    print(f"bench/memory.py: {args.products:,} products x {DIM} dims, {args.workers} workers, "
          f"index data file {index_mib:,.0f} MiB, recommendations: {with_engine}")  # fmt: skip
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}",
        "products": args.products, "workers": args.workers,
        "index_mib": round(index_mib), "recommendations": with_engine,
    }  # fmt: skip
    started = time.perf_counter()
    server = gunicorn_start(port=args.port, workers=args.workers, env=env)
    try:
        figures["start_seconds"] = round(time.perf_counter() - started, 1)
        figures["load_before"] = os.getloadavg()[0]
        figures["traffic_before"] = traffic(args.port, token, paths, args.clients)
        figures["before"] = process_memory(server.pid)
        print_memory(f"Serving build {first} after {figures['traffic_before']}", figures["before"])

        old_workers = {r["pid"] for r in figures["before"] if r["role"] == "worker"}
        second = publish(graph, args.ef_construction)
        published = time.perf_counter()
        peak = 0
        while True:
            rows = process_memory(server.pid)
            peak = max(peak, sum(r["pss"] for r in rows))
            workers = {r["pid"] for r in rows if r["role"] == "worker"}
            if len(workers) == args.workers and not workers & old_workers:
                break
            if time.perf_counter() - published > 300:
                raise SystemExit("the workers were not rolled within 300 s")
            time.sleep(0.2)
        figures["roll_seconds"] = round(time.perf_counter() - published, 1)
        figures["roll_peak_total_pss"] = peak
        status = serving_status(args.port)
        assert status["builds"]["index"] == {"id": second, "loaded_by": "master"}, status
        figures["load_after"] = os.getloadavg()[0]
        figures["traffic_after"] = traffic(args.port, token, paths, args.clients)
        figures["after"] = process_memory(server.pid)
        print_memory(
            f"Serving build {second} (rolled in {figures['roll_seconds']} s, total PSS peak "
            f"{peak:,} MiB during the roll) after {figures['traffic_after']}",
            figures["after"],
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    worst = max(r["private"] for r in figures["before"] + figures["after"] if r["role"] == "worker")
    figures["worst_worker_private"] = worst
    print(f"\nLargest private memory of a worker: {worst:,} MiB (target <= 1024); load "
          f"{figures['load_before']:.2f} / {figures['load_after']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not args.keep_db:
        drop_database(args.server, database)


if __name__ == "__main__":
    main()
