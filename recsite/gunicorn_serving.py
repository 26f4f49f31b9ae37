"""gunicorn server hooks that share the serving artifacts between web workers, and the build
watcher that rolls them (wired in ``gunicorn.conf.py``; the memory model is in
docs/deployment.md).

hnswlib reads an index into ordinary process memory (about 1.7 GB at 1M x 384-dim vectors), so
four workers that each load it hold four copies. Instead the master loads the index and the
engine once, before it forks (``preload_app``), and the workers share those pages copy-on-write:
hnswlib's queries only read the graph, and ``gc.freeze()`` keeps the cyclic garbage collector
from writing into the inherited Python objects. When newer builds are published, the master
loads them and gunicorn forks fresh workers from it, retiring the old ones gracefully (SIGHUP):

1. ``when_ready`` (master, before the first fork): check the artifact store, load the newest
   builds, close the database connections, freeze the heap, start the watcher.
2. The watcher, a small child process (``python -m recsite.gunicorn_serving``), polls the build
   tables every ``RECSITE_INDEX_REFRESH_SECONDS``; when a newer build is READY it downloads it
   into this host's cache (object storage) and sends SIGHUP to the master.
3. ``on_reload`` (master): load the newer builds (the old workers keep serving meanwhile), then
   gunicorn spawns new workers from the updated master and stops the old ones.
4. ``post_fork`` (each worker): the worker inherits what the master loaded and will not load a
   large artifact itself while a roll is pending (``recommender.services.serving_mode``).

The master imports torch and transformers but never runs them (no thread pool starts before
the fork): workers load the query embedder's weights themselves on first use.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

logger = logging.getLogger("recsite.serving")

_watcher: subprocess.Popen[bytes] | None = None
_loaded: dict[str, int | None] = {}


# Hooks (called by gunicorn in the master, except post_fork) ----------------------------------


def when_ready(server: Any) -> None:
    """Master, after the app is loaded and before the first worker is forked."""
    if not server.cfg.preload_app:
        return
    from recommender.services.serving import serving_preload

    global _loaded
    _preimport_embedder()
    try:
        _loaded = serving_preload()
    except Exception as exc:  # noqa: BLE001  (reported, then the master stops: fail fast)
        server.log.error("Cannot preload the serving artifacts: %s: %s", type(exc).__name__, exc)
        # Not gunicorn's own boot-error codes (3, 4), which would read as a worker failing.
        sys.exit(1)
    _freeze()
    _watcher_start(server)


def on_reload(server: Any) -> None:
    """Master, on SIGHUP, before gunicorn forks the new workers: load the newest builds."""
    if not server.cfg.preload_app:
        return
    from recommender.services.serving import serving_preload

    global _loaded
    gc.unfreeze()
    started = time.perf_counter()
    try:
        _loaded = serving_preload()
    except Exception:
        server.log.exception("Reloading the serving artifacts failed; keeping the loaded ones")
    else:
        server.log.info("Serving artifacts reloaded in %.1f s: %s; rolling the workers",
                        time.perf_counter() - started, _loaded)  # fmt: skip
    _freeze()
    if _watcher is None or _watcher.poll() is not None:
        _watcher_start(server)


def post_fork(server: Any, worker: Any) -> None:
    """Worker, right after the fork: serve what the master loaded."""
    gc.enable()
    if not server.cfg.preload_app:
        return
    from recommender.services.serving_mode import serving_inherit_begin

    serving_inherit_begin()


def on_exit(server: Any) -> None:
    """Master, on shutdown: stop the watcher."""
    if _watcher is not None and _watcher.poll() is None:
        _watcher.terminate()


def _preimport_embedder() -> None:
    """Import, never run, torch and transformers' BERT code in the master.

    Each worker imports them for its query embedder anyway; imported before the fork, their
    module objects and relocated library pages are shared instead of private to every worker
    (about 200 MB less per worker in bench/memory.py). Importing starts no torch thread pool:
    those start at the first tensor operation, which only a worker runs, after the fork.
    """
    from django.conf import settings

    if settings.RECSITE_EMBEDDER != "transformer":
        return
    import torch  # noqa: F401
    import transformers.models.bert.modeling_bert  # noqa: F401
    from transformers import AutoModel, AutoTokenizer  # noqa: F401


def _freeze() -> None:
    """Move every object the master holds into the permanent generation: the workers' garbage
    collector then never writes into (and so never copies) the pages they inherit."""
    gc.collect()
    gc.freeze()


def _watcher_start(server: Any) -> None:
    global _watcher
    from django.conf import settings

    command = [sys.executable, "-m", "recsite.gunicorn_serving", "--master", str(server.pid)]
    for kind, build_id in sorted(_loaded.items()):
        command += [f"--{kind}", "none" if build_id is None else str(build_id)]
    _watcher = subprocess.Popen(command, cwd=settings.BASE_DIR)
    server.log.info("Build watcher started (pid %d)", _watcher.pid)


# The watcher -----------------------------------------------------------------------------------


def watch(*, master: int, loaded: dict[str, int | None]) -> None:
    """Poll the build tables; prefetch newer builds, then SIGHUP the master. Ends with it."""
    from django.conf import settings
    from django.db import connections

    from recommender.services.serving import serving_builds_newest, serving_prefetch

    interval = max(settings.RECSITE_INDEX_REFRESH_SECONDS, 0.5)
    signalled = dict(loaded)
    logger.info("Watching for new builds every %.1f s for master %d", interval, master)
    while os.getppid() == master:
        try:
            newest = serving_builds_newest()
            if any(build is not None and build != signalled.get(kind)
                   for kind, build in newest.items()):  # fmt: skip
                serving_prefetch(newest)
                logger.info("Newer builds %s (serving %s): rolling the web workers",
                            newest, signalled)  # fmt: skip
                os.kill(master, signal.SIGHUP)
                signalled = newest
        except Exception:
            # The database or the store is unavailable: the workers keep what they serve.
            logger.exception("Build watcher: checking for new builds failed; retrying")
            connections.close_all()
        time.sleep(interval)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Roll gunicorn's workers on new builds.")
    parser.add_argument("--master", type=int, required=True, help="gunicorn master pid")
    parser.add_argument("--index", default="none", help="index build the master loaded")
    parser.add_argument("--engine", default="none", help="engine build the master loaded")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    import django

    django.setup()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    loaded = {
        kind: None if value == "none" else int(value)
        for kind, value in (("index", args.index), ("engine", args.engine))
    }
    watch(master=args.master, loaded=loaded)


if __name__ == "__main__":
    main()
