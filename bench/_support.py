"""Helpers shared by the benchmarks: the machine's description, scratch PostgreSQL databases and
a gunicorn server on loopback."""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# The benches fork client processes after their in-process baseline has used the tokenizer;
# Hugging Face's tokenizers then warn, on every fork, that they turn their threads off.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def database_exists(server: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def recreate_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A loopback TCP port nothing listens on now, picked by the OS."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return port or free_port()


def add_port_argument(parser: argparse.ArgumentParser) -> None:
    """``--port`` for the bench's server; by default (0) a free one, so two benches on one
    machine never send their requests to each other's server."""
    parser.add_argument(
        "--port", type=_port, default="0", help="loopback port for gunicorn (default: a free one)"
    )


def gunicorn_start(
    *, port: int, workers: int, env: dict[str, str], extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start gunicorn on loopback and wait until /health/live answers (60 s at most)."""
    command = [
        str(REPO / ".venv" / "bin" / "gunicorn"), "recsite.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--log-level", "warning", "--timeout", "120", *extra,
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health/live")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer /health/live within 60 s")


# CPU accounting (Linux /proc) ---------------------------------------------------------------


def _cpu(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds used so far by each of ``pids`` still alive."""
    found = {}
    for pid in pids:
        seconds = _cpu(pid)
        if seconds is not None:
            found[pid] = seconds
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants, each found in its parent's :func:`children` (those its
    main thread started: a gunicorn master's workers, a test's subprocesses)."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            todo.extend(children(pid))
        except OSError:  # Gone meanwhile.
            continue
        tree.append(pid)
    return tree


def cpu_seconds(root: int) -> dict[int, float]:
    """CPU seconds used so far by ``root`` and each live descendant (e.g. a gunicorn master
    and its workers), by pid: :func:`cpu_used` compares two readings."""
    return cpu_of(process_tree(root))


def cpu_used(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """(CPU seconds used between two readings by the processes alive at the second, how many of
    the first had exited meanwhile): a process that exits takes its time with it, so a run in
    which one did undercounts (the caller says so)."""
    used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
    return used, sum(1 for pid in before if pid not in after)


def database_backends(server: str, database: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to ``database`` now (other than this one)."""
    import psycopg

    with psycopg.connect(f"{server}/{database}", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchall()
    return [int(pid) for (pid,) in rows]


# Load from client processes ----------------------------------------------------------------


def client(
    port: int, token: str, paths: list[str], start: float, out: multiprocessing.Queue, k: int
) -> None:
    """One keep-alive connection; waits for ``start`` (a shared wall clock) then sends in turn.
    Every answer must be a 200 with ``k`` results."""
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors: list[str] = []
    time.sleep(max(0.0, start - time.time()))
    for path in paths:
        sent = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - sent)
        if response.status != 200:
            errors.append(f"{response.status} {path}: {body[:200]!r}")
        elif len(json.loads(body)["results"]) != k:
            errors.append(f"fewer than {k} results for {path}")
    out.put((latencies, errors, time.time()))


def load(
    port: int, token: str, paths: list[str], clients: int, *, k: int
) -> dict[str, float | str]:
    """``paths`` from ``clients`` processes in a closed loop: requests/s and latencies."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    start = time.time() + 1.0  # Every process started and connected before the clock runs.
    shares = [paths[i::clients] for i in range(clients)]
    processes = [
        multiprocessing.Process(target=client, args=(port, token, share, start, out, k))
        for share in shares
    ]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    latencies = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    elapsed = max(r[2] for r in results) - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p90_ms": q[89] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


# Memory of a server's processes ----------------------------------------------------------


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup in MiB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1]) // 1024
    return values


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


def is_watcher(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return b"recsite.gunicorn_serving" in handle.read()


def has_torch(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as handle:
        return "libtorch_cpu" in handle.read()


def process_memory(master: int) -> list[dict[str, Any]]:
    """Memory of a gunicorn master and its children (MiB): RSS, PSS, shared, private."""
    rows = []
    for pid in [master, *children(master)]:
        try:
            role = "master" if pid == master else "watcher" if is_watcher(pid) else "worker"
            r = rollup(pid)
            torch = has_torch(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # A retired worker that exited meanwhile.
        rows.append({
            "role": role, "pid": pid, "rss": r["Rss"], "pss": r["Pss"],
            "shared": r["Shared_Clean"] + r["Shared_Dirty"],
            "private": r["Private_Clean"] + r["Private_Dirty"], "torch": torch,
        })  # fmt: skip
    return rows


def sampled_customers(customers: int, *, min_events: int = 50) -> list[Any]:
    """A seeded sample of ``customers`` customers with at least ``min_events`` events (Django
    set up by the caller), drawn from the per-customer aggregate: reading their events to count
    them would warm exactly the pages a timed read then needs."""
    import random

    from recommender.models import Customer, CustomerActivity

    eligible = list(
        CustomerActivity.objects.filter(events__gte=min_events)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    picked = random.Random(0).sample(eligible, min(customers, len(eligible)))
    by_pk = Customer.objects.in_bulk(picked)
    return [by_pk[pk] for pk in picked]


def served_histories(
    customers: int, *, min_events: int = 50, with_network: bool = False
) -> tuple[Any, Any, list[Any]]:
    """``(serving, ann, histories)`` on the configured database (Django set up by the caller):
    the serving engine, its ``ann`` search, and the ``(History, now)`` of
    :func:`sampled_customers`, each read once (``with_network``: with the customer's social
    network, as a list served with the social source reads it)."""
    from recommender.services import recommendations as service
    from recommender.services.recommendations.lists import customer_history

    serving = service.serving_engine()
    histories = [
        customer_history(serving, customer, with_network=with_network)
        for customer in sampled_customers(customers, min_events=min_events)
    ]
    return serving, service.serving_ann(serving), histories
