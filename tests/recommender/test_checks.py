"""System checks of recommender's settings."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from recommender.checks import import_writers_check


@pytest.mark.parametrize("writers", [1, 2, 8])
def test_import_writers_of_one_or_more_pass(settings, writers):
    settings.RECSITE_IMPORT_WRITERS = writers
    assert import_writers_check() == []


@pytest.mark.parametrize("writers", [0, -2])
def test_import_writers_below_one_stop_the_commands_naming_the_setting(settings, writers):
    settings.RECSITE_IMPORT_WRITERS = writers

    [error] = import_writers_check()

    assert error.id == "recommender.E002"
    assert error.msg == (
        f"RECSITE_IMPORT_WRITERS: expected a whole number of connections >= 1, got {writers}"
    )
    with pytest.raises(SystemCheckError, match="RECSITE_IMPORT_WRITERS: expected a whole number"):
        call_command("check")
