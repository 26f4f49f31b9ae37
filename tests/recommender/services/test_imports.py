"""File imports: refusal, row errors with line numbers, strict mode, chunks, replays, formats."""

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from recommender.ingestion.readers import FileRefused
from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, Event, Product
from recommender.services.imports import (
    ImportRowError,
    events_import_file,
    import_kind_detect,
    import_plan,
    online_retail_import_file,
    products_import_file,
)
from recommender.services.ingestion import products_upsert

pytestmark = pytest.mark.django_db

EVENT_HEADER = "event_id,customer_id,product_id,event_type,timestamp,quantity,value"
GOOD_AND_BAD_EVENTS = [
    EVENT_HEADER,  # line 1
    "e1,c1,P1,view,2024-05-01T10:00:00Z,1,",  # 2: good
    "e2,c1,P9,purchase,2024-05-01T10:05:00Z,1,3.50",  # 3: unknown product
    "e3,c2,P2,purchase,yesterday,2,7.00",  # 4: bad timestamp
    "e4,c2,P2,purchase,2024-05-02T09:00:00Z,0,",  # 5: bad quantity
    "e5,c3,P1,like,2024-05-03T09:00:00+02:00,1,",  # 6: unknown event type
    "e6,c3,P2,add_to_cart,2024-05-03T09:00:00+02:00,2,19.90",  # 7: good
]
EXPECTED_ERRORS = [
    ImportRowError(3, "product_id", "unknown product 'P9'"),
    ImportRowError(4, "timestamp", "not an ISO 8601 timestamp: 'yesterday'"),
    ImportRowError(5, "quantity", "must be between 1 and 2147483647, got 0"),
    ImportRowError(
        6,
        "event_type",
        "unknown type 'like'; expected one of "
        "['add_to_cart', 'click', 'purchase', 'search', 'view']",
    ),
]
EXPECTED_GOOD_EVENTS = [
    ("e1", "c1", "P1", "view", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), 1, None),
    ("e6", "c3", "P2", "add_to_cart", datetime(2024, 5, 3, 7, 0, tzinfo=UTC), 2, Decimal("19.90")),
]


@pytest.fixture
def catalogue():
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _events():
    return list(
        Event.objects.order_by("event_id").values_list(
            "event_id", "customer__external_id", "product__external_id", "event_type",
            "occurred_at", "quantity", "value",
        )
    )  # fmt: skip


def _customers():
    return list(Customer.objects.order_by("external_id").values_list("external_id", flat=True))


# Events ----------------------------------------------------------------------------------------


def test_missing_required_column_refuses_the_whole_file_and_writes_nothing(tmp_path, catalogue):
    # given: every row would be fine, but there is no timestamp column
    path = _write(
        tmp_path / "events.csv",
        ["event_id,customer_id,product_id,event_type", "e1,c1,P1,view"],
    )
    # when
    with pytest.raises(FileRefused) as caught:
        events_import_file(path=path)
    # then
    assert str(caught.value) == "line 1: missing required column 'timestamp'"
    assert _events() == []
    assert _customers() == []


def test_two_missing_columns_are_named_together(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", ["event_id,product_id", "e1,P1"])
    with pytest.raises(FileRefused, match=r"^line 1: missing required columns 'customer_id', "):
        events_import_file(path=path)


def test_bad_rows_are_reported_by_line_and_the_valid_rows_imported(tmp_path, catalogue):
    # given
    path = _write(tmp_path / "events.csv", GOOD_AND_BAD_EVENTS)
    # when
    report = events_import_file(path=path)
    # then
    assert report.errors == EXPECTED_ERRORS
    assert (report.rows, report.rejected, report.written) == (6, 4, True)
    assert (report.events.created, report.events.duplicates, report.customers.created) == (2, 0, 2)
    assert _events() == EXPECTED_GOOD_EVENTS
    assert _customers() == ["c1", "c3"]  # c2 sent only bad rows


def test_strict_imports_nothing_when_a_row_is_bad_but_reports_all_of_them(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", GOOD_AND_BAD_EVENTS)

    report = events_import_file(path=path, strict=True)

    assert report.errors == EXPECTED_ERRORS
    assert (report.rejected, report.written, report.created) == (4, False, 0)
    assert _events() == []
    assert _customers() == []


def test_strict_rolls_back_chunks_written_before_the_bad_row(tmp_path, catalogue):
    # given: chunks of two rows; the bad row is in the third chunk
    lines = [EVENT_HEADER] + [f"e{n},c1,P1,view,2024-05-01T10:00:0{n}Z,1," for n in range(5)]
    lines.append("e9,c1,P1,view,soon,1,")
    path = _write(tmp_path / "events.csv", lines)
    # when
    report = events_import_file(path=path, strict=True, chunk_size=2)
    # then
    assert report.errors == [ImportRowError(7, "timestamp", "not an ISO 8601 timestamp: 'soon'")]
    assert report.written is False
    assert _events() == []
    assert _customers() == []


def test_strict_with_only_good_rows_imports_everything(tmp_path, catalogue):
    path = _write(
        tmp_path / "events.csv",
        [GOOD_AND_BAD_EVENTS[0], GOOD_AND_BAD_EVENTS[1], GOOD_AND_BAD_EVENTS[6]],
    )

    report = events_import_file(path=path, strict=True)

    assert (report.rejected, report.written, report.events.created) == (0, True, 2)
    assert _events() == EXPECTED_GOOD_EVENTS


def test_reimporting_the_same_file_changes_nothing(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", GOOD_AND_BAD_EVENTS)
    events_import_file(path=path)

    again = events_import_file(path=path)

    assert (again.events.created, again.events.duplicates, again.customers.created) == (0, 2, 0)
    assert again.errors == EXPECTED_ERRORS
    assert _events() == EXPECTED_GOOD_EVENTS


def test_a_repeated_event_id_is_a_duplicate_within_a_chunk_and_across_chunks(tmp_path, catalogue):
    # given: e1 three times (lines 2, 3 and 6); chunks of three rows
    path = _write(
        tmp_path / "events.csv",
        [
            EVENT_HEADER,
            "e1,c1,P1,view,2024-05-01T10:00:00Z,1,",
            "e1,c1,P1,view,2024-05-01T10:00:00Z,1,",
            "e2,c1,P2,view,2024-05-01T10:01:00Z,1,",
            "e3,c2,P2,view,2024-05-01T10:02:00Z,1,",
            "e1,c9,P2,purchase,2024-05-01T11:00:00Z,1,",
        ],
    )
    # when
    report = events_import_file(path=path, chunk_size=3)
    # then: the first occurrence wins; later ones are counted, not errors
    assert (report.events.created, report.events.duplicates, report.rejected) == (3, 2, 0)
    assert [e[:4] for e in _events()] == [
        ("e1", "c1", "P1", "view"),
        ("e2", "c1", "P2", "view"),
        ("e3", "c2", "P2", "view"),
    ]


def test_unknown_columns_of_an_events_file_are_ignored_and_listed(tmp_path, catalogue):
    path = _write(
        tmp_path / "events.csv",
        [
            "event_id,customer_id,product_id,event_type,timestamp,colour",
            "e1,c1,P1,view,2024-05-01T10:00:00Z,red",
        ],
    )

    report = events_import_file(path=path)

    assert report.ignored_columns == ["colour"]
    assert (report.events.created, report.rejected) == (1, 0)


def test_gzipped_jsonl_events_import_like_csv(tmp_path, catalogue):
    # given: the same rows as JSON objects (native numbers), gzipped, plus a non-object line
    rows = [
        {"event_id": "e1", "customer_id": "c1", "product_id": "P1", "event_type": "view",
         "timestamp": "2024-05-01T10:00:00Z", "quantity": 1},
        {"event_id": "e2", "customer_id": "c1", "product_id": "P9", "event_type": "purchase",
         "timestamp": "2024-05-01T10:05:00Z"},
        {"event_id": "e5", "customer_id": "c3", "product_id": "P1", "event_type": "view"},
        {"event_id": "e6", "customer_id": "c3", "product_id": "P2", "event_type": "add_to_cart",
         "timestamp": "2024-05-03T09:00:00+02:00", "quantity": 2, "value": 19.9},
    ]  # fmt: skip
    text = "\n".join([json.dumps(rows[0]), json.dumps(rows[1]), "[]", *map(json.dumps, rows[2:])])
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    # when
    report = events_import_file(path=path)
    # then
    assert report.file_format == "jsonl"
    assert report.errors == [
        ImportRowError(2, "product_id", "unknown product 'P9'"),
        ImportRowError(3, "row", "expected a JSON object, got an array"),
        ImportRowError(4, "timestamp", "this field is required"),
    ]
    assert _events() == EXPECTED_GOOD_EVENTS


def test_progress_is_reported_per_chunk_and_ends_at_one(tmp_path, catalogue):
    lines = [EVENT_HEADER] + [f"e{n},c1,P1,view,2024-05-01T10:00:00Z,1," for n in range(10)]
    path = _write(tmp_path / "events.csv", lines)
    seen: list[float] = []

    events_import_file(path=path, chunk_size=4, progress=seen.append)

    assert len(seen) == 4  # chunks of 4, 4 and 2 rows, then the end
    assert seen == sorted(seen)
    assert seen[-2:] == [1.0, 1.0]


def test_report_is_json_serialisable_and_summarised(tmp_path, catalogue):
    path = _write(tmp_path / "events.csv", GOOD_AND_BAD_EVENTS)

    report = events_import_file(path=path)
    data = json.loads(json.dumps(report.as_dict()))

    assert data["errors"][0] == {
        "line": 3,
        "field": "product_id",
        "message": "unknown product 'P9'",
    }
    assert data["events"] == {"created": 2, "updated": 0, "unchanged": 0, "duplicates": 0}
    assert (data["kind"], data["rows"], data["rejected"], data["written"]) == ("events", 6, 4, True)
    assert report.summary().splitlines()[1:] == [
        "  events:    2 created, 0 duplicates",
        "  customers: 2 created",
        "  rejected:  4 rows",
    ]


# Products --------------------------------------------------------------------------------------


def test_products_extra_columns_become_attributes_and_a_rerun_is_unchanged(tmp_path):
    # given
    path = _write(
        tmp_path / "products.csv",
        [
            "product_id,title,price,tags,colour,size",
            "P1,Mug,4.5,kitchen|gift,red,",
            'P2,"Teapot, large",20,,,L',
        ],
    )
    # when
    first = products_import_file(path=path)
    second = products_import_file(path=path)
    # then
    assert (first.products.created, first.products.updated, first.products.unchanged) == (2, 0, 0)
    assert (second.products.created, second.products.updated, second.products.unchanged) == (
        0,
        0,
        2,
    )
    assert list(
        Product.objects.order_by("external_id").values_list(
            "external_id", "title", "price", "tags", "attributes"
        )
    ) == [
        ("P1", "Mug", Decimal("4.50"), ["kitchen", "gift"], {"colour": "red"}),
        ("P2", "Teapot, large", Decimal("20.00"), [], {"size": "L"}),
    ]


@pytest.mark.parametrize(
    ("chunk_size", "counts"),
    [(10, (1, 0, 0, 1)), (1, (1, 1, 0, 0))],  # Within one chunk, or across two chunks.
)
def test_a_repeated_product_id_ends_with_the_last_row(tmp_path, chunk_size, counts):
    path = _write(tmp_path / "products.csv", ["product_id,title", "P1,Mug", "P1,Big mug"])

    report = products_import_file(path=path, chunk_size=chunk_size)

    p = report.products
    assert (p.created, p.updated, p.unchanged, p.duplicates) == counts
    assert list(Product.objects.values_list("external_id", "title")) == [("P1", "Big mug")]


def test_products_changed_rows_are_updated_and_bad_rows_reported(tmp_path):
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])
    path = _write(
        tmp_path / "products.jsonl",
        [
            json.dumps({"product_id": "P1", "title": "Mug"}),
            json.dumps({"product_id": "P2", "title": "Big teapot", "material": "clay"}),
            json.dumps({"product_id": "P3", "price": -1}),
            json.dumps(
                {
                    "product_id": "P4",
                    "title": "Cup",
                    "colour": "red",
                    "attributes": {"colour": "blue"},
                }
            ),
        ],
    )

    report = products_import_file(path=path)

    assert (report.products.created, report.products.updated, report.products.unchanged) == (
        0,
        1,
        1,
    )
    assert report.errors == [
        ImportRowError(3, "title", "this field is required"),
        ImportRowError(3, "price", "must be a finite number >= 0, got -1"),
        ImportRowError(4, "colour", "also given inside 'attributes'; give it once"),
    ]
    assert list(
        Product.objects.order_by("external_id").values_list("external_id", "title", "attributes")
    ) == [("P1", "Mug", {}), ("P2", "Big teapot", {"material": "clay"})]


def test_products_file_without_title_column_is_refused(tmp_path):
    path = _write(tmp_path / "products.csv", ["product_id,name", "P1,Mug"])
    with pytest.raises(FileRefused, match=r"^line 1: missing required column 'title'$"):
        products_import_file(path=path)
    assert Product.objects.count() == 0


def test_products_strict_writes_nothing_when_a_row_is_bad(tmp_path):
    path = _write(tmp_path / "products.csv", ["product_id,title,price", "P1,Mug,1", "P2,Pot,cheap"])

    report = products_import_file(path=path, strict=True)

    assert report.errors == [ImportRowError(3, "price", "not a number: 'cheap'")]
    assert (report.written, report.products.created) == (False, 0)
    assert Product.objects.count() == 0


# Detection -------------------------------------------------------------------------------------


def test_import_plan_of_a_folder_is_products_then_events(tmp_path):
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress(b'{"event_type": "view"}\n'))
    _write(tmp_path / "products.csv", ["product_id,title"])
    _write(tmp_path / "notes.csv", ["anything"])

    plan = import_plan(path=tmp_path)

    assert [(step.kind, step.path.name) for step in plan] == [
        ("products", "products.csv"),
        ("events", "events.jsonl.gz"),
    ]


def test_import_plan_refuses_a_folder_with_two_products_files_or_none(tmp_path):
    _write(tmp_path / "products.csv", ["product_id,title"])
    _write(tmp_path / "products.jsonl", ['{"title": "x"}'])
    with pytest.raises(
        FileRefused,
        match=r"holds several products files \(products.csv, products.jsonl\); keep one",
    ):
        import_plan(path=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileRefused, match=r"holds neither products"):
        import_plan(path=empty)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("a.csv", "InvoiceNo,StockCode,Description\n", "online_retail"),
        ("b.csv", "product_id,title,price\n", "products"),
        ("c.csv", "event_id,customer_id,event_type,timestamp\n", "events"),
        ("d.jsonl", '{"product_id": "P1", "title": "Mug"}\n', "products"),
    ],
)
def test_import_kind_is_told_by_the_columns(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert import_kind_detect(path=path) == kind


def test_import_kind_detection_refuses_a_file_it_cannot_place(tmp_path):
    path = _write(tmp_path / "x.csv", ["sku,name"])
    with pytest.raises(FileRefused, match=r"^line 1: cannot tell what .*x.csv holds"):
        import_kind_detect(path=path)


# UCI Online Retail ------------------------------------------------------------------------------

RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
HEART = "WHITE HANGING HEART T-LIGHT HOLDER"
UK = "United Kingdom"
RETAIL_LINES = [
    RETAIL_HEADER,  # line 1
    f"536365,85123A,{HEART},6,2010-12-01 08:26:00,2.55,17850.0,{UK}",
    f"536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,{UK}",
    f"536365,85123a,{HEART},2,2010-12-01 08:26:00,2.55,17850.0,{UK}",
    "536366,POST,POSTAGE,1,2010-12-01 08:28:00,18.00,12583.0,France",  # 5: non-product
    "536367,71053,WHITE LANTERN,1,2011-06-01 12:00:00,3.75,12583.0,France",
    "C536379,71053,WHITE METAL LANTERN,-1,2011-06-02 09:41:00,3.39,12583.0,France",  # 7: cancel
    f"536380,71053,WHITE METAL LANTERN,3,2011-06-03 10:00:00,3.95,,{UK}",  # 8: guest
    f"536381,21777,Unknown,-5,2011-06-04 10:00:00,0,,{UK}",  # 9: guest stock adjustment
    "536382,GIFT_0001_20,Gift Voucher,1,2011-06-05 10:00:00,17.02,12583.0,France",  # 10: voucher
    "536383,84406B,CREAM CUPID HEARTS COAT HANGER,0,2011-06-05 11:00:00,2.75,12583.0,EIRE",  # 11
]


def test_online_retail_slice_applies_the_rules_and_a_second_run_creates_nothing(tmp_path):
    # given
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(RETAIL_LINES) + "\n").encode()))
    # when
    first = online_retail_import_file(path=path)
    second = online_retail_import_file(path=path)
    # then
    assert first.skipped == {"guest": 2, "cancellation": 1, "non_product": 2, "invalid": 1}
    assert (first.rows, first.rejected) == (10, 0)
    assert (first.products.created, first.customers.created, first.events.created) == (2, 2, 4)
    assert (second.products.unchanged, second.customers.unchanged) == (2, 2)
    assert (second.created, second.events.duplicates) == (0, 4)
    assert list(
        Product.objects.order_by("external_id").values_list(
            "external_id", "title", "price", "attributes"
        )
    ) == [
        # The guest line is the latest line of 71053: its price wins; titles tie 2-1.
        ("71053", "WHITE METAL LANTERN", Decimal("3.95"), {"source": "uci-online-retail"}),
        (
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            Decimal("2.55"),
            {"source": "uci-online-retail"},
        ),
    ]
    assert list(
        Customer.objects.order_by("external_id").values_list("external_id", "attributes")
    ) == [
        ("12583", {"country": "France"}),
        ("17850", {"country": "United Kingdom"}),
    ]
    t1 = datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    t2 = datetime(2011, 6, 1, 11, 0, tzinfo=UTC)
    assert list(
        Event.objects.order_by("event_id").values_list(
            "event_id", "customer__external_id", "product__external_id", "event_type",
            "occurred_at", "quantity", "value", "session_id",
        )
    ) == [
        ("uci-536365-71053-0", "17850", "71053", "purchase", t1, 6, Decimal("20.34"), "536365"),
        ("uci-536365-85123A-0", "17850", "85123A", "purchase", t1, 6, Decimal("15.30"), "536365"),
        ("uci-536365-85123A-1", "17850", "85123A", "purchase", t1, 2, Decimal("5.10"), "536365"),
        # 12:00 in London in June is 11:00 UTC.
        ("uci-536367-71053-0", "12583", "71053", "purchase", t2, 1, Decimal("3.75"), "536367"),
    ]  # fmt: skip


def test_online_retail_strict_with_a_bad_line_writes_nothing(tmp_path):
    path = tmp_path / "retail.csv"
    _write(
        path,
        [
            *RETAIL_LINES,
            "536384,22423,REGENCY CAKESTAND,two,2011-06-06 10:00:00,12.75,12583.0,France",
        ],
    )

    report = online_retail_import_file(path=path, strict=True)

    assert report.errors == [ImportRowError(12, "Quantity", "expected a whole number, got 'two'")]
    assert (report.written, report.created) == (False, 0)
    assert (Product.objects.count(), Customer.objects.count(), Event.objects.count()) == (0, 0, 0)


def test_online_retail_file_without_its_columns_is_refused(tmp_path):
    path = _write(tmp_path / "retail.csv", ["InvoiceNo,StockCode,Quantity", "1,A,1"])
    with pytest.raises(FileRefused) as caught:
        online_retail_import_file(path=path)
    assert str(caught.value) == (
        "line 1: missing required columns 'Description', 'InvoiceDate', 'UnitPrice', "
        "'CustomerID', 'Country'"
    )


@pytest.mark.slow
def test_online_retail_full_export_counts(shared_data):
    report = online_retail_import_file(
        path=shared_data / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
    )

    assert (report.rows, report.rejected) == (541_909, 0)
    assert report.skipped == {
        "guest": 135_080, "cancellation": 8_905, "non_product": 1_554, "invalid": 0,
    }  # fmt: skip
    assert (report.products.created, report.customers.created) == (3_815, 4_335)
    assert (report.events.created, report.events.duplicates) == (396_370, 0)
    assert (Product.objects.count(), Customer.objects.count(), Event.objects.count()) == (
        3_815, 4_335, 396_370,
    )  # fmt: skip


def test_a_truncated_gzip_keeps_whole_chunks_without_strict_and_nothing_with_it(
    tmp_path, catalogue
):
    # given: 6,000 events, gzipped, cut in the middle
    lines = [EVENT_HEADER] + [
        f"e{n},c{n % 50},P1,view,2024-05-01T10:00:00Z,1," for n in range(6_000)
    ]
    compressed = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "events.csv.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(FileRefused) as probe:
        events_import_file(path=path, strict=True, chunk_size=500)
    assert Event.objects.count() == 0
    assert probe.value.line is not None
    readable = probe.value.line - 2  # data lines before the one that could not be read
    # when
    with pytest.raises(FileRefused, match=r"cannot read beyond this line"):
        events_import_file(path=path, chunk_size=500)
    # then: the chunks read in full before the cut were written
    assert 500 < readable < 6_000
    assert Event.objects.count() == readable // 500 * 500


@pytest.mark.django_db(transaction=True)
def test_a_bulk_event_import_refreshes_planner_statistics_on_postgresql(tmp_path):
    from django.db import connection

    from recommender.ingestion.records import ProductRecord
    from recommender.services.imports import events_import_file
    from recommender.services.ingestion import products_upsert

    products_upsert(records=[ProductRecord("P1", "Mug")])
    path = tmp_path / "events.csv"
    rows = [f"e{i},c{i % 500},P1,view,2024-01-01T10:00:00Z,1,\n" for i in range(12_000)]
    path.write_text(
        "event_id,customer_id,product_id,event_type,timestamp,quantity,value\n" + "".join(rows)
    )

    report = events_import_file(path=path)

    assert report.events.created == 12_000
    if connection.vendor != "postgresql":
        return  # SQLite has no ANALYZE-dependent plan here; the import itself is what counts.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = %s",
            ["recommender_event"],
        )
        assert cursor.fetchone() == (True,)
