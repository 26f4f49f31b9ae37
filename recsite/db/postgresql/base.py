"""Django's PostgreSQL backend, with its connection health check skipped while the connection
is in use.

``CONN_HEALTH_CHECKS`` makes Django send ``SELECT 1`` before the first query of every request
on a persistent connection, so a connection the server or a firewall dropped while it sat idle
is replaced instead of failing the request. Under load that check is one more round trip on
every request, on a connection that answered a query milliseconds before: on the recommendation
endpoint, one of five. Here it runs only on a connection that has not started a query for
``CONN_HEALTH_CHECK_IDLE`` seconds (a key of the database's settings; default 1 s; 0 checks
every request, as Django does). A connection lost while busy fails its next query as it would
without a check, and Django closes it at the end of that request (``errors_occurred``), as it
does for any connection error.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

DEFAULT_IDLE_S = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's own attributes (set by the base class), which its type stubs do not declare.
    health_check_enabled: bool
    health_check_done: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.health_check_idle = float(
            self.settings_dict.get("CONN_HEALTH_CHECK_IDLE", DEFAULT_IDLE_S)
        )
        self._used_at = -float("inf")

    def create_cursor(self, name: Any = None) -> Any:
        self._used_at = time.monotonic()
        return super().create_cursor(name)

    def connect(self) -> None:
        super().connect()
        self._used_at = time.monotonic()  # Freshly opened: nothing to check.

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and time.monotonic() - self._used_at < self.health_check_idle
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
