"""Rules for the raw UCI Online Retail export: line parsing, skip buckets, catalogue, ids."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from recommender.ingestion import online_retail
from recommender.ingestion.records import RowError


def _raw(**overrides):
    raw = {
        "InvoiceNo": "536365",
        "StockCode": "85123a",
        "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
        "Quantity": "6",
        "InvoiceDate": "2010-12-01 08:26:00",
        "UnitPrice": "2.55",
        "CustomerID": "17850.0",
        "Country": "United Kingdom",
    }
    raw.update(overrides)
    return raw


def test_a_line_is_parsed_with_upper_case_code_integer_customer_and_utc_time():
    line = online_retail.LineParser()(7, _raw())
    assert line == online_retail.RetailLine(
        line=7,
        invoice="536365",
        stock_code="85123A",
        description="WHITE HANGING HEART T-LIGHT HOLDER",
        quantity=6,
        invoiced_at=datetime(2010, 12, 1, 8, 26, tzinfo=UTC),  # GMT in winter
        unit_price=Decimal("2.55"),
        customer_id="17850",
        country="United Kingdom",
    )


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2011-06-01 12:00:00", datetime(2011, 6, 1, 11, 0, tzinfo=UTC)),  # BST = UTC+1
        ("2011-03-27 00:59:00", datetime(2011, 3, 27, 0, 59, tzinfo=UTC)),  # just before BST
        ("2011-10-30 01:30:00", datetime(2011, 10, 30, 0, 30, tzinfo=UTC)),  # repeated hour: BST
    ],
)
def test_invoice_dates_are_london_wall_clock_time(local, utc):
    assert online_retail.LineParser()(2, _raw(InvoiceDate=local)).invoiced_at == utc


def test_a_bad_line_reports_every_faulty_field():
    with pytest.raises(RowError) as caught:
        online_retail.LineParser()(
            2, _raw(Quantity="six", InvoiceDate="01/12/2010 08:26", UnitPrice="", CustomerID="x")
        )
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("Quantity", "expected a whole number, got 'six'"),
        ("InvoiceDate", "expected 'YYYY-MM-DD HH:MM:SS', got '01/12/2010 08:26'"),
        ("UnitPrice", "not a number: ''"),
        ("CustomerID", "expected a whole number, got 'x'"),
    ]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"CustomerID": ""}, "guest"),
        ({"CustomerID": "", "InvoiceNo": "C536379"}, "guest"),  # guest is tested first
        ({"InvoiceNo": "C536379", "Quantity": "-1"}, "cancellation"),
        ({"StockCode": "POST"}, "non_product"),
        ({"StockCode": "bank charges"}, "non_product"),
        ({"StockCode": "gift_0001_40"}, "non_product"),
        ({"StockCode": "DCGS0069"}, None),  # gift sets are products
        ({"StockCode": "DOTCOM"}, None),  # only the listed codes are charges
        ({"Quantity": "0"}, "invalid"),
        ({"UnitPrice": "-11062.06"}, "invalid"),
        ({"UnitPrice": "0"}, None),  # a free item is still a purchase
    ],
)
def test_each_line_falls_into_one_bucket(overrides, reason):
    line = online_retail.LineParser()(2, _raw(**overrides))
    assert online_retail.skip_reason(line) == reason


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, True),
        ({"CustomerID": ""}, True),  # guest lines describe real products
        ({"InvoiceNo": "C536379", "Quantity": "-1"}, False),
        ({"StockCode": "M"}, False),
        ({"Quantity": "-3", "Description": "damaged"}, False),  # a stock adjustment
    ],
)
def test_catalogue_lines(overrides, expected):
    line = online_retail.LineParser()(2, _raw(**overrides))
    assert online_retail.is_catalogue_line(line) is expected


def test_catalogue_takes_the_most_frequent_title_ties_to_the_latest_and_the_latest_price():
    # given
    parse = online_retail.LineParser()
    catalogue = online_retail.CatalogueBuilder()
    for number, (description, date, price) in enumerate(
        [
            ("MUG", "2011-01-01 10:00:00", "1.00"),
            ("MUG RED", "2011-01-02 10:00:00", "1.10"),
            ("MUG", "2011-01-05 10:00:00", "1.25"),
            ("MUG RED", "2011-01-04 10:00:00", "1.20"),  # earlier date on a later line
            ("", "2011-01-03 10:00:00", "1.15"),
        ],
        start=2,
    ):
        catalogue.add(
            parse(
                number,
                _raw(StockCode="m1", Description=description, InvoiceDate=date, UnitPrice=price),
            )
        )
    catalogue.add(parse(9, _raw(StockCode="b2", Description="BOWL", UnitPrice="3")))
    # when
    products = catalogue.raw_products()
    # then: MUG and MUG RED tie at 2; MUG was used last (5 January), as was its price
    assert products == [
        (
            9,
            {
                "product_id": "B2",
                "title": "BOWL",
                "price": "3",
                "attributes": {"source": "uci-online-retail"},
            },
        ),
        (
            4,
            {
                "product_id": "M1",
                "title": "MUG",
                "price": "1.25",
                "attributes": {"source": "uci-online-retail"},
            },
        ),
    ]


def test_customers_keep_their_most_recent_country():
    parse = online_retail.LineParser()
    customers = online_retail.CustomerBuilder()
    customers.add(parse(2, _raw(Country="France", InvoiceDate="2011-05-01 10:00:00")))
    customers.add(parse(3, _raw(Country="EIRE", InvoiceDate="2011-04-01 10:00:00")))
    customers.add(parse(4, _raw(CustomerID="12346.0", Country="Spain")))
    assert customers.raw_customers() == [
        {"customer_id": "12346", "attributes": {"country": "Spain"}},
        {"customer_id": "17850", "attributes": {"country": "France"}},
    ]


def test_event_ids_count_earlier_lines_of_the_same_code_in_the_same_invoice():
    parse = online_retail.LineParser()
    ids = online_retail.EventIds()
    lines = [
        parse(2, _raw(InvoiceNo="1", StockCode="A")),
        parse(3, _raw(InvoiceNo="1", StockCode="B")),
        parse(4, _raw(InvoiceNo="1", StockCode="a")),
        parse(5, _raw(InvoiceNo="2", StockCode="A")),
        parse(6, _raw(InvoiceNo="1", StockCode="A")),
    ]
    assert [ids.next_id(line) for line in lines] == [
        "uci-1-A-0", "uci-1-B-0", "uci-1-A-1", "uci-2-A-0", "uci-1-A-2",
    ]  # fmt: skip


def test_raw_event_is_one_purchase_with_rounded_value_and_the_invoice_as_session():
    line = online_retail.LineParser()(2, _raw(Quantity="3", UnitPrice="0.425"))
    assert online_retail.raw_event(line, event_id="uci-536365-85123A-0") == {
        "event_id": "uci-536365-85123A-0",
        "customer_id": "17850",
        "product_id": "85123A",
        "event_type": "purchase",
        "timestamp": "2010-12-01T08:26:00+00:00",
        "quantity": 3,
        "value": "1.28",  # 1.275 rounded half up
        "session_id": "536365",
    }
