"""A dump of the test database (as an operator would take one: pg_dump on PostgreSQL, SQLite's
own dump of the database file) and a search of its text values for an id, as a whole token."""

import re
import sqlite3
import subprocess
from contextlib import closing

from django.db import connection

from tests.integration.conftest import database_url

_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def database_dump() -> str:
    """Every row of the test database as INSERT statements (committed data only: the dump reads
    through a connection of its own)."""
    if connection.vendor == "sqlite":
        with closing(sqlite3.connect(connection.settings_dict["NAME"])) as database:
            return "\n".join(database.iterdump())
    result = subprocess.run(
        ["pg_dump", "--data-only", "--inserts", "--no-owner", database_url()],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout


def text_values(dump: str) -> list[str]:
    """The quoted text values of the dump's INSERT statements (numbers are not text: a row id
    may equal a shop's id by chance)."""
    values = []
    for line in dump.splitlines():
        if line.startswith("INSERT INTO"):
            values += [v.replace("''", "'") for v in _LITERAL.findall(line)]
    return values


def holding(values: list[str], ids: set[str]) -> set[str]:
    """Those of ``ids`` that some text value holds as a whole token."""
    tokens = set()
    for value in values:
        tokens.update(re.split(r"[\s\"',:;=\[\]{}()/]+", value))
    return ids & tokens
