"""Where a served customer list's time goes: each stage of the request in-process, and every
process's CPU under API load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_100k \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-100k RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        .venv/bin/python bench/request_anatomy.py [--requests 1200] [--api 3000 --clients 2,4]

On a database ``bench/scale.py --keep-db`` leaves. The sample: the seeded 300 customers with at
least 50 events that ``bench/scale.py`` times (``_support.sampled_customers``), each asked for
once to warm the process, then ``--requests`` drawn from them (seeded).

1. **Stages, in-process**: ``GET /api/v1/customers/<id>/recommendations?k=10`` through Django's
   test client with an API token, one at a time; each stage (the customer and history read,
   the history built, the engine, the products check, the log insert, input validation,
   rendering...) timed by wrapping its function: wall and this thread's CPU time,
   per request; and the cyclic garbage collector's passes during the timed requests.
2. **API** (``--api N``): gunicorn with the repository's ``gunicorn.conf.py`` and 4 workers, N
   requests per client count from closed-loop client processes (``bench/_support.load``), and
   the CPU time every process used during each run (``/proc``), per request, by role.
3. **Round trips** (``--round-trips``): ``customer_get`` for each sampled customer back to back,
   after 10 ms asleep, and after 10 ms of pure-Python work: wall and CPU per read (on a VM a
   read after idleness costs several times one right after another); then the customer and
   their history read apart (two statements) and together (``customer_with_history``, one),
   alternated three times: wall, CPU, and the PostgreSQL server process's CPU per customer.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")

from _support import (  # noqa: E402
    cpu_of,
    cpu_used,
    free_port,
    gunicorn_start,
    load,
    sampled_customers,
)

_spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])


def _timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` so each call adds its wall and thread CPU time to ``label``."""
    original: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            _spent[label][0] += time.perf_counter() - wall
            _spent[label][1] += time.thread_time() - cpu

    setattr(owner, name, timed)


def stages(paths: list[str], token: str, requests: int) -> None:
    from django.core.handlers.base import BaseHandler
    from django.test import Client
    from rest_framework.views import APIView

    import recommender.api.recommendations as view
    import recommender.services.recommendations.lists as lists
    from recommender.ml.engine import HybridEngine
    from recsite.api.renderers import SafeJSONRenderer

    for owner, name, label in (
        (BaseHandler, "get_response", "whole request (Django)"),
        (APIView, "initial", "authentication, permissions, throttle"),
        (view, "query_input", "query parameters"),
        (view, "customer_with_history_or_404", "customer and history read"),
        (view.service, "customer_recommendations", "service"),
        (lists, "customer_history", "  history (from the rows read)"),
        (lists, "variant_assign", "  experiment variant"),
        (lists, "rotation_demotion", "  rotation"),
        (HybridEngine, "recommend", "  engine (both stages)"),
        (lists, "_active_products", "  products check"),
        (lists, "logged", "  log insert"),
        (view, "render", "body"),
        (SafeJSONRenderer, "render", "JSON"),
    ):
        _timed(owner, name, label)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
    for path in paths:
        assert client.get(path).status_code == 200, path
    drawn = random.Random(0).choices(paths, k=requests)
    _spent.clear()
    collections = {"passes": 0, "full": 0, "seconds": 0.0, "started": 0.0}

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections["started"] = time.perf_counter()
            return
        collections["seconds"] += time.perf_counter() - collections["started"]
        collections["passes"] += 1
        collections["full"] += info["generation"] == 2

    gc.callbacks.append(collected)
    try:
        for path in drawn:
            client.get(path)
    finally:
        gc.callbacks.remove(collected)
    print(f"in-process, {requests} requests (ms per request: wall / this thread's CPU)")
    for label, (wall, cpu) in _spent.items():
        print(f"  {label:40s} {wall / requests * 1e3:7.3f} / {cpu / requests * 1e3:7.3f}")
    print(
        f"  garbage collection: {collections['passes']} passes ({collections['full']} full), "
        f"{collections['seconds'] / requests * 1e3:.3f} ms a request"
    )


def _roles() -> dict[int, str]:
    """Every live process's role, from its command line."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        out[int(pid)] = (
            "gunicorn" if b"gunicorn" in command
            else "postgres" if b"postgres" in command
            else "redis" if b"redis" in command
            else "clients and the rest"
        )  # fmt: skip
    return out


def api(paths: list[str], token: str, requests: int, clients: list[int]) -> None:
    port = free_port()
    server = gunicorn_start(
        port=port, workers=4, env=dict(os.environ),
        extra=["-c", str(REPO / "gunicorn.conf.py"), "--keep-alive", "30"],
    )  # fmt: skip
    try:
        sent = [paths[i % len(paths)] for i in range(requests)]
        load(port, token, sent[:400], clients=2, k=10)  # Warm every worker.
        for count in clients:
            before = cpu_of(_roles())
            figures = load(port, token, sent, clients=count, k=10)
            roles = _roles()
            after = cpu_of(roles)
            spent = {
                role: cpu_used(before, {p: s for p, s in after.items() if roles[p] == role})[0]
                for role in set(roles.values())
            }
            per_request = ", ".join(
                f"{role} {seconds / float(figures['requests']) * 1e3:.2f}"
                for role, seconds in sorted(spent.items(), key=lambda item: -item[1])
            )
            print(
                f"API, {count} clients: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} "
                f"ms, p99 {figures['p99_ms']:.1f} ms, {figures['errors']} errors; CPU ms per "
                f"request: {per_request}"
            )
    finally:
        server.terminate()
        server.wait(timeout=60)


def round_trips(external_ids: list[str]) -> None:
    from recommender.selectors.catalog import customer_get

    def asleep() -> None:
        time.sleep(0.01)

    def working() -> None:
        end, spins = time.perf_counter() + 0.01, 0
        while time.perf_counter() < end:
            spins += 1

    print("customer_get (ms per read: wall / this thread's CPU)")
    for label, before in (("back to back", None), ("after 10 ms asleep", asleep),
                          ("after 10 ms of Python work", working)):  # fmt: skip
        wall = cpu = 0.0
        for external_id in external_ids:
            if before is not None:
                before()
            started, used = time.perf_counter(), time.thread_time()
            customer_get(external_id=external_id)
            wall += time.perf_counter() - started
            cpu += time.thread_time() - used
        count = len(external_ids)
        print(f"  {label:28s} {wall / count * 1e3:6.3f} / {cpu / count * 1e3:6.3f}")
    reads_together(external_ids)


def reads_together(external_ids: list[str], rounds: int = 3) -> None:
    """The customer and their history as two reads (``customer_get`` then
    ``customer_recent_events``) against one statement (``customer_with_history``, what the
    endpoint runs), alternated ``rounds`` times in this process: wall, this thread's CPU and
    the database server process's CPU (``/proc``; the server must run on this host)."""
    from django.db import connection

    from recommender.selectors.catalog import customer_get
    from recommender.selectors.recommendations import (
        customer_recent_events,
        customer_with_history,
    )

    def apart(external_id: str) -> object:
        customer = customer_get(external_id=external_id)
        assert customer is not None
        return customer_recent_events(customer=customer)

    def together(external_id: str) -> object:
        return customer_with_history(external_id=external_id)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [server] = cursor.fetchone()
    print("customer and history (ms per customer: wall / this thread's CPU / server CPU)")
    for _ in range(rounds):
        for label, read in (("two reads", apart), ("one statement", together)):
            for external_id in external_ids[:30]:
                read(external_id)  # Warm.
            wall, cpu, served = time.perf_counter(), time.thread_time(), cpu_of([server])
            for _ in range(4):
                for external_id in external_ids:
                    read(external_id)
            count = 4 * len(external_ids)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            server_cpu = cpu_of([server])[server] - served[server]
            print(
                f"  {label:28s} {wall / count * 1e3:6.3f} / {cpu / count * 1e3:6.3f} / "
                f"{server_cpu / count * 1e3:6.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=1200, help="In-process requests (0: none, API only)."
    )
    parser.add_argument("--api", type=int, default=0, help="API requests per client count.")
    parser.add_argument("--clients", default="2,4")
    parser.add_argument("--round-trips", action="store_true", help="Time reads after idleness.")
    args = parser.parse_args()

    import django

    django.setup()
    from accounts.services import api_token_create

    _, token = api_token_create(name=f"bench-anatomy-{time.time_ns()}", scopes=["read"])
    ids = [customer.external_id for customer in sampled_customers(300)]
    paths = [f"/api/v1/customers/{i}/recommendations?k=10" for i in ids]
    if not paths:
        raise SystemExit("no customer has 50 events: run bench/scale.py --keep-db first")
    if args.round_trips:
        round_trips(ids)
    if args.requests:
        stages(paths, token, args.requests)
    if args.api:
        api(paths, token, args.api, [int(c) for c in args.clients.split(",")])


if __name__ == "__main__":
    main()
