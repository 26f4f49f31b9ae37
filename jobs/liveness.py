"""Which process runs a job step, and whether it is still alive. Django-free.

A job records the process running its current step as a :class:`ProcessId`: the host, the pid,
and what tells that pid's process from a later one reusing the number (the pid namespace and the
process's start time, from ``/proc``). Any process on the same host and in the same pid
namespace can then tell exactly whether the step's process still exists
(:func:`process_liveness`); elsewhere the answer is :attr:`Liveness.UNKNOWN` and the job's
heartbeat decides (:mod:`jobs.services.runs`).
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_PROC = Path("/proc")


class Liveness(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # Another host or pid namespace, or no /proc: ask the heartbeat.


@dataclass(frozen=True, slots=True)
class ProcessId:
    host: str
    pid: int
    namespace: str = ""  # Inode of the pid namespace; "" where /proc is missing.
    started: str = ""  # Start time in clock ticks after boot; "" where unknown.

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.namespace}/{self.started}"

    @classmethod
    def parse(cls, text: str) -> ProcessId | None:
        host, _, rest = text.partition("/")
        pid, _, rest = rest.partition("/")
        namespace, _, started = rest.partition("/")
        if not host or not pid.isdigit():
            return None
        return cls(host=host, pid=int(pid), namespace=namespace, started=started)


def _stat(pid: int) -> tuple[str, str] | None:
    """A process's state letter and start time from ``/proc/<pid>/stat``; None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (2nd field) may hold spaces and parentheses: split after its last ")".
    fields = text.rpartition(")")[2].split()
    return fields[0], fields[19]


def _namespace() -> str:
    try:
        return str((_PROC / "self" / "ns" / "pid").stat().st_ino)
    except OSError:
        return ""


def local_process(pid: int) -> ProcessId:
    """The identity of a process of this host (in this pid namespace)."""
    namespace = _namespace()
    stat = _stat(pid) if namespace else None
    return ProcessId(
        host=socket.gethostname(),
        pid=pid,
        namespace=namespace if stat else "",
        started=stat[1] if stat else "",
    )


_this = cache(local_process)


def this_process() -> ProcessId:
    # Keyed by pid: a forked child (a Celery pool process) is a process of its own.
    return _this(os.getpid())


def process_liveness(process: ProcessId) -> Liveness:
    here = this_process()
    if not process.namespace or (process.host, process.namespace) != (here.host, here.namespace):
        return Liveness.UNKNOWN
    stat = _stat(process.pid)
    if stat is None:
        return Liveness.DEAD
    state, started = stat
    # A zombie has exited (its parent has not collected it yet); another start time is another
    # process that was given the same pid.
    if state in ("Z", "X") or started != process.started:
        return Liveness.DEAD
    return Liveness.ALIVE
