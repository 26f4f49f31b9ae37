"""Whether this process loads its serving artifacts itself or inherits them from a parent.

By default every process (runserver, a Celery worker, a management command, a gunicorn worker
without preloading) loads the newest READY index and engine builds itself and reloads them when
newer ones are published.

Under gunicorn with ``preload_app`` (``gunicorn.conf.py``), the master loads them before forking,
so the workers share those pages copy-on-write, and a newer build is rolled in by the master:
it loads the build and forks fresh workers, retiring the old ones gracefully
(``recsite/gunicorn_serving.py``). A worker is told so by :func:`serving_inherit_begin` right
after the fork. From then on it keeps serving the inherited build while a newer one waits to be
rolled in, instead of loading a private copy; everything small it still picks up itself (the
side buffer of newly embedded products, configuration versions, rules). If no roll comes within
``RECSITE_SERVING_ROLL_GRACE_SECONDS`` (the master or its watcher is stuck), the worker loads the
newer build itself after all, with a warning: a safety net that costs a private copy.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass
class _State:
    inherited: bool = False
    # kind -> build primary key this process serves (None: no build), and who loaded it.
    serving: dict[str, int | None] = field(default_factory=dict)
    loaded_by: dict[str, str] = field(default_factory=dict)
    # kind -> (newer build waiting to be rolled in, when this process first saw it).
    pending: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    warned: set[tuple[str, int | None]] = field(default_factory=set)


_state = _State()
_lock = threading.Lock()


def serving_inherit_begin() -> None:
    """Called in a freshly forked gunicorn worker: what the master loaded is inherited."""
    with _lock:
        _state.inherited = True
        _state.loaded_by = dict.fromkeys(_state.serving, "master")
        _state.pending.clear()
        _state.warned.clear()


def serving_inherit_end() -> None:
    """Back to loading artifacts in this process (tests; a process that stops inheriting)."""
    with _lock:
        _state.inherited = False
        _state.pending.clear()
        _state.warned.clear()


def serving_noted(kind: str, build_id: int | None) -> None:
    """Record the build of ``kind`` this process serves now, loaded by this process."""
    with _lock:
        if _state.serving.get(kind, -1) != build_id or kind not in _state.loaded_by:
            _state.loaded_by[kind] = "self"
        _state.serving[kind] = build_id
        if kind in _state.pending and _state.pending[kind][0] == build_id:
            del _state.pending[kind]  # The build that was waiting serves now.


def serving_forgotten(kind: str) -> None:
    """This process no longer serves a build of ``kind`` (it reset what it loaded)."""
    with _lock:
        _state.serving.pop(kind, None)
        _state.loaded_by.pop(kind, None)
        _state.pending.pop(kind, None)


def serving_keep_inherited(kind: str, *, current: int | None, newest: int | None) -> bool:
    """True when this process should go on serving its build ``current`` of ``kind`` although
    ``newest`` is the newest READY one: it inherits its builds, and the master has had less than
    ``RECSITE_SERVING_ROLL_GRACE_SECONDS`` to roll it since it first saw ``newest``."""
    if not _state.inherited:
        return False
    if current == newest:
        with _lock:
            _state.pending.pop(kind, None)  # Rolled back to this build: nothing waits.
        return False
    now = time.monotonic()
    grace = settings.RECSITE_SERVING_ROLL_GRACE_SECONDS
    with _lock:
        seen = _state.pending.get(kind)
        if seen is None or seen[0] != newest:
            seen = _state.pending[kind] = (newest, now)
            logger.info(
                "Worker %d: %s build %s is newer than the inherited %s; serving the inherited "
                "one until the master rolls the workers",
                os.getpid(), kind, newest, current,
            )  # fmt: skip
        if now - seen[1] < grace:
            return True
        if (kind, newest) not in _state.warned:
            _state.warned.add((kind, newest))
            logger.warning(
                "Worker %d: the master did not roll the workers within %.0f s of %s build %s "
                "(RECSITE_SERVING_ROLL_GRACE_SECONDS); loading it in this process, a private "
                "copy. Is the build watcher running? See docs/deployment.md.",
                os.getpid(), grace, kind, newest,
            )  # fmt: skip
        return False


def serving_status() -> dict[str, Any]:
    """What this process serves, without loading anything (``GET /health/serving``)."""
    with _lock:
        return {
            "pid": os.getpid(),
            "mode": "inherited" if _state.inherited else "own",
            "builds": {
                kind: {"id": build, "loaded_by": _state.loaded_by.get(kind, "self")}
                for kind, build in sorted(_state.serving.items())
            },
            "pending": {kind: seen[0] for kind, seen in sorted(_state.pending.items())},
        }


def serving_caches_release() -> None:
    """Forget the serving engine, the tuning sample and the vector index this process holds;
    whatever asks for them next loads them again. A step of a train job calls it before it
    loads a shop of its own: where every step runs in one process (``manage.py train``, a
    worker on both queues, a worker's next job) the earlier steps leave them loaded, about 3-4
    GiB at a million products, which the step would otherwise hold beside its own peak. A
    process that inherits them from its parent keeps them: they are the parent's pages, shared,
    and forgetting them would make it load a private copy."""
    from .index import serving_index_reset
    from .recommendations import serving_engine_reset
    from .tuning import tuning_sample_reset

    if _state.inherited:
        return
    serving_engine_reset()
    tuning_sample_reset()
    serving_index_reset()
