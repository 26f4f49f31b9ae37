"""bench/_support.py's --port: by default a port nothing listens on, so two benches on one
machine never send their requests to each other's server; a port outside 0-65535 is refused."""

import argparse
import socket
import subprocess
import sys
import time

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

# A parent whose child waits for "go", burns 0.5 s of CPU, then waits for "end" (so it is alive
# when the second reading is taken); the parent passes both lines on from its own stdin.
_CHILD = (
    "import sys, time\n"
    "sys.stdin.readline()\n"
    "end = time.process_time() + 0.5\n"
    "while time.process_time() < end: pass\n"
    "sys.stdin.readline()\n"
)
_PARENT = (
    "import subprocess, sys\n"
    f"child = subprocess.Popen([sys.executable, '-c', {_CHILD!r}], stdin=subprocess.PIPE)\n"
    "for _ in range(2):\n"
    "    child.stdin.write(sys.stdin.readline().encode()); child.stdin.flush()\n"
    "child.wait()\n"
)


def test_cpu_used_counts_a_busy_child_of_the_tree_and_says_when_one_exited():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(_support.cpu_seconds(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # Both started and waiting.
        before = _support.cpu_seconds(parent.pid)
        assert parent.stdin is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        deadline = time.monotonic() + 30  # The child burns its 0.5 s (slower on a busy host).
        while _support.cpu_used(before, _support.cpu_seconds(parent.pid))[0] < 0.5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # Then waits.
        after = _support.cpu_seconds(parent.pid)
        used, exited = _support.cpu_used(before, after)

        assert sorted(after) == sorted(before)
        assert len(after) == 2
        assert 0.5 <= used <= 0.8
        assert exited == 0
        assert _support.cpu_used(after, {parent.pid: after[parent.pid]}) == (0.0, 1)
    finally:
        parent.communicate("end\n", timeout=30)
