"""The gunicorn worker's wait: one worker woken per connection (Linux ``EPOLLEXCLUSIVE``).

Requests served through the worker, its JSON refusals included, are tested against a live
gunicorn in tests/integration (test_api_contract.py, test_topology.py)."""

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from recsite.gunicorn_worker import EXCLUSIVE_WAKEUP, WakeOneWaiter

pytestmark = pytest.mark.skipif(not EXCLUSIVE_WAKEUP, reason="Linux epoll only")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


def _connect(listener: socket.socket) -> socket.socket:
    return socket.create_connection(listener.getsockname(), timeout=5)


def test_a_waiting_connection_is_reported_until_accepted(listener, pipe):
    waiter = WakeOneWaiter([listener], pipe[0])
    client = _connect(listener)
    try:
        assert waiter.wait(5) == [listener]
        assert waiter.wait(5) == [listener]  # Level-triggered, as select() is.
        accepted, _ = listener.accept()
        accepted.close()
        assert waiter.wait(0.01) == []
    finally:
        client.close()
        waiter.close()


def test_a_signal_byte_on_the_pipe_is_consumed_and_reports_no_listener(listener, pipe):
    waiter = WakeOneWaiter([listener], pipe[0])
    os.write(pipe[1], b"1")
    try:
        assert waiter.wait(5) == []
        os.set_blocking(pipe[0], False)
        with pytest.raises(BlockingIOError):
            os.read(pipe[0], 1)
    finally:
        waiter.close()


def test_one_connection_wakes_one_of_two_waiting_workers(listener):
    pipes = [os.pipe(), os.pipe()]
    waiters = [WakeOneWaiter([listener], read) for read, _ in pipes]
    woken: list[list[socket.socket]] = [[], []]
    both_waiting = threading.Barrier(3)

    def wait(i: int) -> None:
        both_waiting.wait()
        woken[i] = waiters[i].wait(1.5)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    both_waiting.wait()
    threading.Event().wait(0.3)  # Both threads are now blocked in epoll_wait.
    client = _connect(listener)
    try:
        for thread in threads:
            thread.join()
        assert sorted(len(found) for found in woken) == [0, 1]
        assert [listener] in woken
    finally:
        client.close()
        for waiter in waiters:
            waiter.close()
        for read, write in pipes:
            os.close(read)
            os.close(write)
