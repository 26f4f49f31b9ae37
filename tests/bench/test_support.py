"""bench/_support.py's --port: by default a port nothing listens on, so two benches on one
machine never send their requests to each other's server; a port outside 0-65535 is refused."""

import argparse
import os
import socket
import subprocess
import sys
import time
from subprocess import PIPE

import pytest

from bench import _support


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    _support.add_port_argument(parser)
    return parser


def test_the_default_port_is_a_free_one_each_time():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = _parser().parse_args([]).port

        assert port != busy
        assert 1024 <= port <= 65535
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # Free: binding it succeeds.


def test_a_chosen_port_is_kept_and_a_bad_one_refused(capsys):
    assert _parser().parse_args(["--port", "8123"]).port == 8123

    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["--port", "70000"])

    assert exit_info.value.code == 2
    assert "argument --port: 70000 is not a TCP port (0-65535)" in capsys.readouterr().err


# CPU accounting ------------------------------------------------------------------------------


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_reads_a_process_tree_and_cpu_used_compares_two_readings():
    me = os.getpid()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    try:
        deadline = time.monotonic() + 30
        while child.pid not in _support.cpu_seconds(me):  # The tree holds the new child.
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # This process burns 0.5 s; /proc counts in clock ticks (10 ms), user and system apart.
        # Only this process and the child are compared: a test runner may have other children.
        ours = (me, child.pid)
        before = {pid: s for pid, s in _support.cpu_seconds(me).items() if pid in ours}
        _burn(0.5)
        after = {pid: s for pid, s in _support.cpu_seconds(me).items() if pid in ours}
        used, exited = _support.cpu_used(before, after)

        assert sorted(after) == sorted(ours)
        assert 0.48 <= used <= 0.75
        assert exited == 0
        assert _support.cpu_of([child.pid, me]).keys() == {child.pid, me}
    finally:
        child.communicate(b"", timeout=30)
    now = {pid: s for pid, s in _support.cpu_seconds(me).items() if pid in ours}
    assert sorted(now) == [me]
    assert _support.cpu_used(after, now)[1] == 1  # The child exited: its time went with it.
