"""bench/_support.py's --port: by default a port nothing listens on, so two benches on one
machine never send their requests to each other's server; a port outside 0-65535 is refused."""

import argparse
import socket

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
