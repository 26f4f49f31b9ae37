"""The import commands: exact counts on real data, printed errors, exit status, detection."""

import gzip
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, Event, Product
from recommender.services.ingestion import products_upsert

pytestmark = pytest.mark.django_db

EVENTS = [
    "event_id,customer_id,product_id,event_type,timestamp,quantity,value",
    "e1,c1,P1,view,2024-05-01T10:00:00Z,1,",
    "e2,c1,P9,purchase,2024-05-01T10:05:00Z,1,3.50",
    "e3,c2,P2,purchase,yesterday,2,7.00",
    "e4,c2,P2,purchase,2024-05-02T09:00:00Z,0,",
    "e6,c3,P2,add_to_cart,2024-05-03T09:00:00+02:00,2,19.90",
]
ERROR_LINES = [
    "line 3: product_id: unknown product 'P9'",
    "line 4: timestamp: not an ISO 8601 timestamp: 'yesterday'",
    "line 5: quantity: must be between 1 and 2147483647, got 0",
]


def _run(*args, **options):
    out, err = StringIO(), StringIO()
    options.setdefault("no_progress", True)
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def catalogue():
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])


def test_amazon_office_imports_exactly_and_a_second_run_creates_nothing(shared_data):
    folder = shared_data / "amazon_office"
    # when
    products_out, _ = _run("import_products", str(folder / "products.csv"))
    events_out, _ = _run("import_events", str(folder / "events.csv"))
    # then
    assert (Product.objects.count(), Event.objects.count(), Customer.objects.count()) == (
        2_420, 53_258, 4_905,
    )  # fmt: skip
    assert products_out.splitlines()[1:] == [
        "  products:  2,420 created, 0 updated, 0 unchanged",
        "  rejected:  0 rows",
    ]
    assert events_out.splitlines()[1:] == [
        "  events:    53,258 created, 0 duplicates",
        "  customers: 4,905 created",
        "  rejected:  0 rows",
    ]
    # when: the whole folder again, through the detecting command
    again_out, again_err = _run("import", str(folder))
    # then
    assert (Product.objects.count(), Event.objects.count(), Customer.objects.count()) == (
        2_420, 53_258, 4_905,
    )  # fmt: skip
    lines = again_out.splitlines()
    assert lines[0] == f"Importing products from {folder / 'products.csv'}"
    assert lines[2:4] == [
        "  products:  0 created, 0 updated, 2,420 unchanged",
        "  rejected:  0 rows",
    ]
    assert lines[4] == f"Importing events from {folder / 'events.csv'}"
    assert lines[6:] == [
        "  events:    0 created, 53,258 duplicates",
        "  customers: 0 created",
        "  rejected:  0 rows",
    ]
    assert again_err == ""


def test_bad_rows_are_printed_with_a_warning_and_the_good_rows_imported(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", EVENTS)

    out, err = _run("import_events", str(path))

    assert err.splitlines() == [
        *ERROR_LINES,
        "warning: 3 rows rejected (see above); the other rows were imported",
    ]
    assert "  events:    2 created, 0 duplicates" in out.splitlines()
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e1", "e6"]


def test_strict_prints_every_error_and_fails_without_writing(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", EVENTS)
    err = StringIO()

    with pytest.raises(CommandError) as caught:
        call_command(
            "import_events", str(path), strict=True, no_progress=True, stdout=StringIO(), stderr=err
        )

    assert str(caught.value) == f"{path}: 3 rows rejected; --strict: nothing was imported"
    assert err.getvalue().splitlines() == ERROR_LINES
    assert (Event.objects.count(), Customer.objects.count()) == (0, 0)


def test_max_errors_limits_what_is_printed_not_what_is_counted(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", EVENTS)

    out, err = _run("import_events", str(path), max_errors=1)

    assert err.splitlines() == [
        ERROR_LINES[0],
        "… and 2 more row errors (--max-errors to see more)",
        "warning: 3 rows rejected (see above); the other rows were imported",
    ]
    assert "  rejected:  3 rows" in out.splitlines()


def test_a_file_missing_a_column_is_refused(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", ["event_id,customer_id,event_type", "e1,c1,view"])

    with pytest.raises(CommandError) as caught:
        _run("import_events", str(path))

    assert str(caught.value) == f"{path}: refused: line 1: missing required column 'timestamp'"
    assert Event.objects.count() == 0


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "nope.csv"
    for command in ("import_products", "import_events", "import_online_retail", "import"):
        with pytest.raises(CommandError, match=f"cannot read {path}: No such file or directory"):
            _run(command, str(path))


def test_format_option_reads_jsonl_under_any_name(tmp_path):
    path = _write(tmp_path / "products.txt", ['{"product_id": "P1", "title": "Mug"}'])

    _run("import_products", str(path), file_format="jsonl")

    assert list(Product.objects.values_list("external_id", "title")) == [("P1", "Mug")]


def test_progress_bar_goes_to_stderr(tmp_path):
    path = _write(tmp_path / "products.csv", ["product_id,title", "P1,Mug"])

    out, err = _run("import_products", str(path), no_progress=False)

    assert "products.csv: 100%" in err
    assert "%" not in out


@pytest.mark.parametrize(
    ("name", "lines", "expected"),
    [
        ("catalogue.csv", ["product_id,title", "P1,Mug"], "products"),
        (
            "behaviour.csv",
            ["customer_id,product_id,event_type,timestamp", "c1,P1,view,2024-05-01T10:00:00Z"],
            "events",
        ),
        (
            "export.csv",
            [
                "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
                "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,UK",
            ],
            "online retail",
        ),
    ],
)
def test_import_detects_the_kind_of_a_file(tmp_path, name, lines, expected):
    products_upsert(records=[ProductRecord("P1", "Mug")])
    path = tmp_path / (name + ".gz")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    out, _ = _run("import", str(path))

    assert out.splitlines()[0] == f"Importing {expected} from {path}"
    assert "  rejected:  0 rows" in out.splitlines()
    assert Product.objects.count() == (2 if expected == "online retail" else 1)
    assert Event.objects.count() == (0 if expected == "products" else 1)


def test_import_refuses_a_file_it_cannot_place(tmp_path):
    path = _write(tmp_path / "mystery.csv", ["sku,name", "1,x"])
    with pytest.raises(CommandError, match=r"line 1: cannot tell what .*mystery.csv holds"):
        _run("import", str(path))


def test_online_retail_command_prints_skipped_counts(tmp_path):
    path = _write(
        tmp_path / "retail.csv",
        [
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
            "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
            "536366,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,,United Kingdom",
            "C536367,71053,WHITE METAL LANTERN,-6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
        ],
    )

    out, _ = _run("import_online_retail", str(path))

    assert out.splitlines()[1:] == [
        "  products:  1 created, 0 updated, 0 unchanged",
        "  customers: 1 created, 0 updated, 0 unchanged",
        "  events:    1 created, 0 duplicates",
        "  skipped:   1 guest, 1 cancellation, 0 non_product, 0 invalid",
        "  rejected:  0 rows",
    ]


# The values the API refuses are refused here too, with their line ----------------------------


def test_csv_rows_with_refused_values_are_reported_by_line(tmp_path, catalogue):
    # given: a control character, ids outside the alphabet, a moment before year 1 in UTC
    path = _write(
        tmp_path / "events.csv",
        [
            "event_id,customer_id,product_id,event_type,timestamp",
            "e1,c1,P1,view,2024-05-01T10:00:00Z",
            "e2,shop/42,P1,view,2024-05-01T10:00:00Z",
            "e3\x01,c1,P1,view,2024-05-01T10:00:00Z",
            "e4,c1,P1,view,0001-01-01T00:00:00+01:00",
            '"e5","c 5","P1","view","2024-05-01T10:00:00Z"',
        ],
    )
    # when
    _, err = _run("import_events", str(path))
    # then
    alphabet = "must use only ASCII letters, digits and - . _ ~ : @ (at least one letter or digit)"
    assert err.splitlines() == [
        f"line 3: customer_id: {alphabet}, got 'shop/42'",
        "line 4: event_id: contains a control character (U+0001)",
        "line 5: timestamp: outside years 1 to 9999 once moved to UTC: '0001-01-01T00:00:00+01:00'",
        f"line 6: customer_id: {alphabet}, got 'c 5'",
        "warning: 4 rows rejected (see above); the other rows were imported",
    ]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["e1"]


def test_json_lines_keep_their_types_as_in_the_api(tmp_path):
    # given: what the batch API refuses (an integer title, a null is_active, a surrogate)
    path = _write(
        tmp_path / "products.jsonl",
        [
            '{"product_id": "P1", "title": "Mug"}',
            '{"product_id": "P2", "title": 5}',
            '{"product_id": "P3", "title": "Cup", "is_active": null}',
            '{"product_id": "P4", "title": "Pot", "attributes": {"note": "\\ud800"}}',
            '{"product_id": "P5", "title": "Jug", "colour": "bl\\u0000ue"}',
        ],
    )
    # when
    _, err = _run("import_products", str(path))
    # then
    assert err.splitlines() == [
        "line 2: title: expected a string, got integer",
        "line 3: is_active: expected true or false, got null",
        "line 4: attributes.note: contains an unpaired UTF-16 surrogate (U+D800)",
        "line 5: colour: contains a control character (U+0000)",
        "warning: 4 rows rejected (see above); the other rows were imported",
    ]
    assert list(Product.objects.values_list("external_id", flat=True)) == ["P1"]
