"""recsite's PostgreSQL backend: a persistent connection's health check (``SELECT 1`` before a
request's first query) runs only after the connection sat idle, so a busy server saves that round
trip; a connection dropped while idle is still replaced before a request uses it."""

import time

import psycopg
import pytest
from django.db import OperationalError, connection, connections

from recsite.db.postgresql.base import DatabaseWrapper

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="recsite's PostgreSQL backend"),
    pytest.mark.django_db(transaction=True),
]


def _drop_server_side(pid: int) -> None:
    """End the server process of the connection ``pid`` from another connection, as a server
    restart or a firewall's idle timeout would."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # The server process needs a moment to go.
            row = other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            if row is None:
                return
            time.sleep(0.02)
    raise AssertionError(f"server process {pid} still there")


def _new_request() -> None:
    """What Django does between requests (request_started / request_finished)."""
    connection.close_if_unusable_or_obsolete()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_backend_is_recsites_with_health_checks_on():
    db = connections["default"]
    assert isinstance(db, DatabaseWrapper)
    assert db.settings_dict["ENGINE"] == "recsite.db.postgresql"
    assert db.settings_dict["CONN_HEALTH_CHECKS"] is True
    assert db.health_check_idle == 1.0


def test_a_connection_dropped_while_idle_is_replaced_before_the_next_request_uses_it(monkeypatch):
    # given: a connection idle longer than the setting, whose server process is gone
    monkeypatch.setattr(connection, "health_check_idle", 0.05)
    pid = _backend_pid()
    time.sleep(0.1)
    _drop_server_side(pid)

    # when: the next request queries
    _new_request()
    new_pid = _backend_pid()

    # then: the health check found it dead and the query ran on a new connection
    assert new_pid != pid


def test_a_connection_used_a_moment_ago_is_not_checked_and_a_lost_one_is_replaced_after(
    monkeypatch,
):
    # given: a connection that answered a query just now, whose server process then went
    monkeypatch.setattr(connection, "health_check_idle", 60.0)
    pid = _backend_pid()
    _drop_server_side(pid)

    # when: the next request queries at once
    _new_request()

    # then: no check ran (it would have replaced the connection), so the query fails ...
    with pytest.raises(OperationalError):
        _backend_pid()
    # ... and Django closes the failed connection at the end of that request: the next works
    _new_request()
    assert _backend_pid() != pid
