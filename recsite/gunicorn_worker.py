"""recsite's gunicorn worker: the sync worker, woken alone for each connection, answering
malformed requests in the API's JSON error format.

**One worker wakes per connection.** gunicorn's sync workers wait for a connection with
``select()`` on the shared listening socket, so every idle worker wakes for every connection and
all but one find nothing to accept (the "thundering herd"): with four workers on two cores,
three wasted wake-ups a request, each a context switch, a failed ``accept`` and a heartbeat.
On Linux this worker waits in ``epoll`` with ``EPOLLEXCLUSIVE`` on the listener instead, so the
kernel wakes one idle worker per connection; the worker's signal pipe is watched as before.
The sync worker's other properties are kept: one request at a time per process, a connection
taken by whichever worker is free (no keep-alive to pin a client to a busy worker), and the
heartbeat. Elsewhere (no ``EPOLLEXCLUSIVE``) it waits as gunicorn does. Measured in
docs/benchmarks.md (sixteenth session).

**JSON errors.** gunicorn answers a request it cannot parse (a request line longer than
``limit_request_line``, a header it refuses, an invalid method) itself, before Django, with an
HTML page. A client of a JSON API then gets a body it cannot read. This worker answers
``{"detail": "..."}`` instead, with gunicorn's own status and message.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
from collections.abc import Sequence
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import StopWaiting, SyncWorker

EXCLUSIVE_WAKEUP = hasattr(select, "epoll") and hasattr(select, "EPOLLEXCLUSIVE")


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error`` with a JSON body."""
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


class WakeOneWaiter:
    """Waits for a connection on ``listeners`` or a byte on ``pipe`` (a worker's signal pipe,
    consumed here); among the processes waiting on the same listener, the kernel wakes one.

    Level-triggered, like ``select()``: a connection nobody accepted is reported again."""

    def __init__(self, listeners: Sequence[socket.socket], pipe: int) -> None:
        self._poller = select.epoll()
        self._listeners = {sock.fileno(): sock for sock in listeners}
        self._pipe = pipe
        for fd in self._listeners:
            self._poller.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        self._poller.register(pipe, select.EPOLLIN)

    def wait(self, timeout: float) -> list[socket.socket]:
        """The listeners with a connection waiting, after at most ``timeout`` seconds."""
        ready = []
        for fd, _ in self._poller.poll(timeout):
            if fd == self._pipe:
                os.read(self._pipe, 1)
            elif fd in self._listeners:
                ready.append(self._listeners[fd])
        return ready

    def close(self) -> None:
        self._poller.close()


class RecsiteSyncWorker(SyncWorker):
    _waiter: WakeOneWaiter | None = None

    def init_process(self) -> None:
        # The base worker's handle_error calls util.write_error; this process is this worker's.
        util.write_error = write_json_error
        super().init_process()

    def run(self) -> None:
        # After init_process made the signal pipe, before the first wait.
        if EXCLUSIVE_WAKEUP:
            self._waiter = WakeOneWaiter(self.sockets, self.PIPE[0])
        super().run()

    def wait(self, timeout: float) -> list[Any] | None:
        if self._waiter is None:
            return super().wait(timeout)
        try:
            self.notify()
            return self._waiter.wait(timeout)
        except OSError as error:  # As gunicorn's select() wait handles them.
            if error.args[0] == errno.EINTR:
                return self.sockets
            if error.args[0] == errno.EBADF:
                if self.nr < 0:
                    return self.sockets
                raise StopWaiting from error
            raise
