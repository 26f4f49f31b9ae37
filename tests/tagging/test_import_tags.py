"""``manage.py import_tags``: a vocabulary from CSV, idempotent, all or nothing."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tagging.models import Tag
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

DEMO_TAGS = REPO_ROOT / "data" / "demo" / "tags.csv"


def test_the_demo_vocabulary_imports_with_its_parents_and_a_rerun_creates_nothing():
    out = StringIO()
    call_command("import_tags", str(DEMO_TAGS), stdout=out)
    again = StringIO()
    call_command("import_tags", str(DEMO_TAGS), stdout=again)

    assert out.getvalue() == f"15 tags read from {DEMO_TAGS}: 15 created.\n"
    assert again.getvalue() == f"15 tags read from {DEMO_TAGS}: 0 created.\n"
    # "home/..." and "kitchen/..." tags bring their parents "home" and "kitchen".
    assert Tag.objects.count() == 17
    candles = Tag.objects.get(name="home/candles and lights")
    assert candles.parent is not None
    assert (candles.parent.name, candles.description[:19]) == ("home", "candles, tea lights")


def test_a_bad_row_names_its_line_and_nothing_is_written(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("name,description\nmugs,cups\n  /  ,nothing\n", encoding="utf-8")

    with pytest.raises(CommandError, match=r"tags.csv, line 3: name: must not be empty$"):
        call_command("import_tags", str(path), stdout=StringIO())

    assert Tag.objects.count() == 0


def test_a_file_without_a_name_column_is_refused(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("label\nmugs\n", encoding="utf-8")

    with pytest.raises(CommandError, match=r"expected a 'name' column, got \['label'\]$"):
        call_command("import_tags", str(path), stdout=StringIO())
