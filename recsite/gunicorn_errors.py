"""gunicorn's refusals of malformed requests, in the API's JSON error format.

gunicorn answers a request it cannot parse (a request line longer than ``limit_request_line``,
a header it refuses, an invalid method) itself, before Django, with an HTML page. A client of a
JSON API then gets a body it cannot read. The worker below answers ``{"detail": "..."}``
instead, with gunicorn's own status and message; it is the sync worker otherwise.
"""

import json
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error`` with a JSON body."""
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


class JsonErrorSyncWorker(SyncWorker):
    def init_process(self) -> None:
        # The base worker's handle_error calls util.write_error; this process is this worker's.
        util.write_error = write_json_error
        super().init_process()
