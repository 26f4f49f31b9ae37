"""A throwaway PostgreSQL cluster with the settings docs/ingestion.md recommends for a large shop.

    .venv/bin/python bench/pg_cluster.py start [--dir /work/bench-data/pg-tuned] [--port 5433]
        [--shared-buffers 4GB]
    .venv/bin/python bench/pg_cluster.py stop [--dir …]

The benches run against the machine's PostgreSQL as it is configured (Debian's defaults:
``shared_buffers`` 128 MB, ``max_wal_size`` 1 GB). A merchant with tens of millions of events
sets the server up as ``docs/ingestion.md`` ("PostgreSQL settings for a large shop") says; this
script starts a second cluster of the same PostgreSQL with exactly those settings (``SETTINGS``
below, the table the docs give), on loopback with trust authentication, so a bench can be run
against both in the same session: ``bench/scale.py --server postgres://postgres@127.0.0.1:5433``.

Durability is PostgreSQL's default (``fsync``, ``synchronous_commit`` and full-page writes on):
nothing here trades safety for speed. Runs as root (the cluster belongs to the ``postgres``
user, as ``initdb`` requires) or as that user. Nothing of the project uses it at run time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# docs/ingestion.md, "PostgreSQL settings for a large shop" (the machine has 23 GiB of RAM).
SETTINGS = {
    "shared_buffers": "4GB",
    "max_wal_size": "16GB",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "on",
    "maintenance_work_mem": "1GB",
    "work_mem": "64MB",
    "effective_cache_size": "12GB",
    "autovacuum": "on",
    "random_page_cost": "1.1",
}


def _binaries() -> Path:
    """The bin folder of the PostgreSQL the machine's server runs (same major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _as_postgres(command: list[str]) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True)


def start(folder: Path, port: int, shared_buffers: str) -> None:
    binaries = _binaries()
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth", "trust", "--encoding", "UTF8", "--locale", "C.UTF-8"])  # fmt: skip
    settings = {**SETTINGS, "shared_buffers": shared_buffers}
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    options += f" -c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data}"
    _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                  "-o", options, "-w", "start"])  # fmt: skip
    print(f"started: postgres://postgres@127.0.0.1:{port} ({folder}); settings {settings}")


def stop(folder: Path) -> None:
    _as_postgres([str(_binaries() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", default="/work/bench-data/pg-tuned", type=Path)
    parser.add_argument("--port", type=int, default=5433)
    parser.add_argument("--shared-buffers", default=SETTINGS["shared_buffers"])
    args = parser.parse_args()
    if args.action == "start":
        start(args.dir, args.port, args.shared_buffers)
    else:
        stop(args.dir)


if __name__ == "__main__":
    sys.exit(main())
