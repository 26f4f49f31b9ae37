"""Structured logs: JSON lines in production (DEBUG off), plain lines with DEBUG on or when
chosen (RECSITE_LOG_FORMAT). A real process, configured from its environment as in production;
the web and worker processes' logs: tests/integration/test_observability_live.py."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

LOG_SOMETHING = "import logging; logging.getLogger('recsite.check').warning('hello %s', 'world')"


def _stderr(**env: str) -> str:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("RECSITE_LOG_FORMAT", "DJANGO_DEBUG")
    }
    environment.update(DJANGO_SETTINGS_MODULE="recsite.settings.base", DJANGO_SECRET_KEY="x", **env)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", LOG_SOMETHING],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stderr


def _ours(lines: list[str]) -> list[str]:
    return [line for line in lines if "recsite.check" in line]


def test_production_logs_one_json_object_a_line():
    lines = _stderr().splitlines()

    records = [json.loads(line) for line in lines]  # Every line, not only ours.
    [record] = [r for r in records if r["logger"] == "recsite.check"]
    assert set(record) == {"time", "level", "logger", "message", "process"}
    assert (record["level"], record["message"]) == ("WARNING", "hello world")
    assert isinstance(record["process"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])


@pytest.mark.parametrize(
    "env", [{"DJANGO_DEBUG": "true"}, {"RECSITE_LOG_FORMAT": "plain"}], ids=["debug", "chosen"]
)
def test_plain_lines_with_debug_on_or_when_chosen(env):
    [line] = _ours(_stderr(**env).splitlines())

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING recsite.check: hello world", line
    )
