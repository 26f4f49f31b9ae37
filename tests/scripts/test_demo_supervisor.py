"""The demo's supervisor (``supervise`` in scripts/lib.sh, run by scripts/demo.sh) against
stand-in processes: a "worker" that starts a child of its own (as the Celery worker starts its
beat scheduler) and a "web server". Killing the worker restarts it and leaves no orphan; killing
the web server ends the supervisor with a message and stops everything; so does SIGTERM; and a
worker that keeps stopping ends it instead of being restarted for ever."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# The stand-ins write their pids: the worker its own and its child's (as the Celery worker starts
# its beat scheduler), the web server its own and its child's (as gunicorn starts its workers).
SCRIPT = """
source "$REPO/scripts/lib.sh"
start_worker() {
  start_group worker_pid bash -c \\
    'echo $$ >>"$RUN/workers"; sleep 300 & echo $! >>"$RUN/children"; wait'
}
start_web() {
  start_group web_pid bash -c 'echo $$ >"$RUN/web"; sleep 300 & echo $! >>"$RUN/web"; wait'
}
supervise start_worker start_web
"""
STOPPING_WORKER = SCRIPT.replace("sleep 300 & echo", "sleep 0.2 & echo", 1)  # The worker only.


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_until(what: str, condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


@dataclass
class Supervisor:
    process: subprocess.Popen
    run: Path

    def pids(self, name: str) -> list[int]:
        path = self.run / name
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def everything(self) -> list[int]:
        return self.pids("workers") + self.pids("children") + self.pids("web")

    def stderr(self) -> str:
        return (self.run / "stderr").read_text()


@pytest.fixture
def supervisor(tmp_path) -> Iterator[Callable[[str], Supervisor]]:
    started: list[Supervisor] = []

    def start(script: str, **env: str) -> Supervisor:
        with (tmp_path / "stderr").open("wb") as sink:
            process = subprocess.Popen(
                ["bash", "-c", script],
                env={**os.environ, "REPO": str(REPO_ROOT), "RUN": str(tmp_path),
                     "WORKER_LOG": "var/worker.log", "WEB_LOG": "var/web.log", **env},
                stdout=subprocess.DEVNULL, stderr=sink,
            )  # fmt: skip
        started.append(Supervisor(process, tmp_path))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait()
        for pid in each.everything():
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_is_restarted_and_its_child_stopped(supervisor):
    sup = supervisor(SCRIPT)
    wait_until("both started", lambda: sup.pids("children") and sup.pids("web"))
    [worker], [child] = sup.pids("workers"), sup.pids("children")

    os.kill(worker, signal.SIGKILL)

    wait_until("a new worker", lambda: len(sup.pids("children")) == 2)
    wait_until("the old worker's child stopped", lambda: not running(child))
    assert running(sup.pids("workers")[1])
    assert running(sup.pids("children")[1])
    assert running(sup.pids("web")[0])  # The web server never noticed.
    assert sup.process.poll() is None
    assert (
        "The Celery worker stopped (exit status 137; see var/worker.log); restarting it"
        in sup.stderr()
    )


def test_a_killed_web_server_ends_the_demo_and_leaves_nothing_running(supervisor):
    sup = supervisor(SCRIPT)
    wait_until("both started", lambda: sup.pids("children") and sup.pids("web"))

    os.kill(sup.pids("web")[0], signal.SIGKILL)

    assert sup.process.wait(timeout=60) == 1
    assert [pid for pid in sup.everything() if running(pid)] == []
    assert (
        "The web server stopped (exit status 137; see var/web.log); stopping the worker too"
        in sup.stderr()
    )


def test_sigterm_stops_everything(supervisor):
    sup = supervisor(SCRIPT)
    wait_until("both started", lambda: sup.pids("children") and sup.pids("web"))

    sup.process.send_signal(signal.SIGTERM)

    assert sup.process.wait(timeout=60) == 0
    assert [pid for pid in sup.everything() if running(pid)] == []


def test_a_worker_that_keeps_stopping_ends_the_demo(supervisor):
    sup = supervisor(STOPPING_WORKER, RECSITE_WORKER_RESTARTS="2")

    assert sup.process.wait(timeout=60) == 1
    assert len(sup.pids("workers")) == 3  # Started, then restarted twice.
    assert [pid for pid in sup.everything() if running(pid)] == []
    assert (
        "The Celery worker stopped 3 times within a minute (last exit status 0; see "
        "var/worker.log); stopping" in sup.stderr()
    )
