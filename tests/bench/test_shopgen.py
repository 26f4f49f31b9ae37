"""bench/shopgen.py, the synthetic shop generator: a tiny shop has exactly the sizes asked for,
the same bytes for the same seed, a sound structure (funnel, sessions, launches, seasons) and
imports into recsite with no rejected row."""

import csv
import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from bench import shopgen
from recommender.models import Customer, Event, Product
from tests.conftest import SHARED_DATA

TINY = {"products": 200, "customers": 100, "events": 5_000}
# Three small real sources keep the vocabulary quick to read (the Online Retail export is large).
SOURCES = "instacart,hm,office"
FILES = ("products.csv", "product_meta.csv", "events.csv")


def _config(**changes):
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"shared datasets not found at {SHARED_DATA}; tests need ../shared/data beside the "
            "checkout, or RECSITE_SHARED_DATA naming the folder"
        )
    values = {**TINY, "vocab_from": str(SHARED_DATA), "vocab_sources": SOURCES, **changes}
    return shopgen.ShopConfig(**values)


def _rows(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _moment(text):
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    report = shopgen.generate(_config(), folder)
    return folder, report


def test_sizes_columns_ids_and_time_order_are_exact(tiny):
    folder, report = tiny
    products = _rows(folder / "products.csv")
    events = _rows(folder / "events.csv")
    with open(folder / "events.csv", encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(shopgen.EVENT_COLUMNS)
    with open(folder / "products.csv", encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(shopgen.PRODUCT_COLUMNS)
    assert [p["product_id"] for p in products] == [f"P{i:06d}" for i in range(1, 201)]
    assert len(events) == 5_000
    assert [e["event_id"] for e in events] == [f"E{i:08d}" for i in range(1, 5_001)]
    assert len({e["customer_id"] for e in events}) == 100
    assert set(Counter(e["event_type"] for e in events)) == set(shopgen.EVENT_TYPES)
    times = [_moment(e["timestamp"]) for e in events]
    assert times == sorted(times)
    assert times[0] >= datetime(2024, 1, 1, tzinfo=UTC)
    assert times[-1] < datetime(2026, 1, 1, tzinfo=UTC)
    assert all(e["timestamp"].endswith("Z") for e in events)
    assert len({p["title"] for p in products}) == 200
    assert report["files"] == {name: (folder / name).stat().st_size for name in FILES}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones(tiny, tmp_path):
    folder, _ = tiny
    shopgen.generate(_config(), tmp_path / "again")
    shopgen.generate(_config(seed=1), tmp_path / "other")
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (folder / name).read_bytes()


def test_funnel_sessions_values_and_launches_are_consistent(tiny):
    folder, _ = tiny
    products = {p["product_id"]: p for p in _rows(folder / "products.csv")}
    launch = {
        m["product_id"]: _moment(m["launched_at"]) for m in _rows(folder / "product_meta.csv")
    }
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    owner: dict[str, str] = {}
    purchases = 0
    for event in _rows(folder / "events.csv"):
        product, session, kind = event["product_id"], event["session_id"], event["event_type"]
        assert _moment(event["timestamp"]) >= launch[product]
        assert owner.setdefault(session, event["customer_id"]) == event["customer_id"]
        assert int(event["quantity"]) >= 1
        if kind == "purchase":
            purchases += 1
            # The whole funnel for this product, earlier in the same session.
            assert {("view", product), ("click", product), ("add_to_cart", product)} <= seen[
                session
            ]
            price = Decimal(products[product]["price"])
            assert Decimal(event["value"]) == price * int(event["quantity"])
        else:
            assert event["value"] == ""
        seen[session].add((kind, product))
    assert purchases > 0
    in_span = [p for p, moment in launch.items() if moment >= datetime(2024, 1, 1, tzinfo=UTC)]
    assert len(in_span) > 0


def test_the_summary_printed_at_generation_matches_the_files(tiny):
    folder, report = tiny
    summary = report["summary"]
    stats = shopgen.shop_stats(folder)
    assert stats["problems"] == {
        "unknown_product_events": 0, "events_before_launch": 0, "purchases_without_view": 0,
        "duplicate_event_ids": 0, "duplicate_product_ids": 0,
    }  # fmt: skip
    assert stats["time_ordered"] is True
    assert (stats["products"], stats["customers"], stats["events"]) == (200, 100, 5_000)
    assert stats["event_types"] == dict(sorted(summary["event_types"].items()))
    for key in (
        "sessions", "baskets", "items_per_basket", "repeat_purchase_share",
        "new_product_event_share", "top_1pct_product_event_share",
    ):  # fmt: skip
        assert stats[key] == summary[key], key
    assert json.loads((folder / "shop.json").read_text())["summary"] == summary


def test_behaviour_has_the_structure_recommenders_learn_from(tiny, tmp_path):
    folder, report = tiny
    stats = shopgen.shop_stats(folder)
    shopgen.generate(_config(partner_rate=0.0), tmp_path)
    # Partners (in complementary categories) are bought together more than chance, and far
    # more than without the partner effect.
    without = shopgen.shop_stats(tmp_path)["partner_copurchase_lift"]
    assert stats["partner_copurchase_lift"] > max(1.5, 2 * without)
    summary = report["summary"]
    assert summary["repeat_purchase_share"] > 0.05  # Staples of consumable categories.
    assert summary["items_per_basket"] > 1.2
    assert summary["new_product_event_share"] > 0
    assert summary["top_1pct_product_event_share"] > 0.03  # Three times a uniform share.
    assert summary["sessions"] < summary["events"] / 3
    # Titles of one category share words: hashed title vectors are closer within a category.
    check = shopgen.embedding_check(folder, sample=200, pairs=3_000, dimension=64)
    cosine = check["hashing_title"]["mean_cosine"]
    assert cosine["same_category"] > 2 * cosine["other_department"]


@pytest.mark.django_db
def test_recsite_imports_the_folder_with_no_rejected_row(tiny):
    folder, _ = tiny
    out = StringIO()
    call_command("import", str(folder), "--strict", no_progress=True, stdout=out, stderr=StringIO())
    assert out.getvalue().count("rejected:  0 rows") == 2
    assert (Product.objects.count(), Customer.objects.count(), Event.objects.count()) == (
        200, 100, 5_000,
    )  # fmt: skip
    first = _rows(folder / "products.csv")[0]
    product = Product.objects.get(external_id=first["product_id"])
    assert (product.title, product.category, product.brand, str(product.price)) == (
        first["title"], first["category"], first["brand"], first["price"],
    )  # fmt: skip
    assert product.tags == (first["tags"].split("|") if first["tags"] else [])
    assert product.attributes == {}


def test_gzip_holds_the_same_bytes_and_replaces_the_plain_files(tiny, tmp_path):
    folder, _ = tiny
    target = tmp_path / "shop"
    shopgen.generate(_config(), target)
    shopgen.generate(_config(gzip=True), target)
    for name in FILES:
        assert not (target / name).exists()
        assert gzip.decompress((target / f"{name}.gz").read_bytes()) == (folder / name).read_bytes()


def test_customer_order_holds_the_same_events_grouped_by_customer(tiny, tmp_path):
    folder, _ = tiny
    shopgen.generate(_config(order="customer"), tmp_path / "by-customer")
    by_time = _rows(folder / "events.csv")
    by_customer = _rows(tmp_path / "by-customer" / "events.csv")

    def content(rows):
        return Counter(tuple(v for k, v in row.items() if k != "event_id") for row in rows)

    assert content(by_customer) == content(by_time)
    customers = [row["customer_id"] for row in by_customer]
    assert customers == sorted(customers)


def test_seasonal_categories_sell_mostly_in_season(tmp_path):
    report = shopgen.generate(
        _config(products=300, customers=300, events=20_000, seasonal_share=1.0), tmp_path
    )
    peak = {c["name"]: c["season_peak_day"] for c in report["categories"]}
    category = {p["product_id"]: p["category"] for p in _rows(tmp_path / "products.csv")}
    near = total = 0
    for event in _rows(tmp_path / "events.csv"):
        day = _moment(event["timestamp"]).timetuple().tm_yday
        distance = abs(day - peak[category[event["product_id"]]])
        near += min(distance, 365 - distance) <= 61
        total += 1
    assert near / total > 0.5  # A third of the year: 0.33 without seasons.


def test_the_vocabulary_can_come_from_any_interchange_products_file(tmp_path):
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    words = {
        "garden/tools": ["sturdy", "steel", "folding", "compact", "spade", "rake", "trowel"],
        "garden/seeds": ["heirloom", "organic", "sweet", "giant", "tomato", "basil", "pepper"],
        "kitchen/pans": ["cast", "iron", "nonstick", "deep", "skillet", "wok", "griddle"],
    }
    lines = ["product_id,title,category"]
    for name, pool in words.items():
        for i in range(12):
            lines.append(f"{name}-{i},{pool[i % 4]} {pool[(i + 1) % 4]} {pool[4 + i % 3]},{name}")
    (vocab / "products.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shopgen.generate(
        shopgen.ShopConfig(products=60, customers=10, events=300, vocab_from=str(vocab)),
        tmp_path / "shop",
    )
    allowed = {w.capitalize() for pool in words.values() for w in pool}
    for product in _rows(tmp_path / "shop" / "products.csv"):
        assert product["category"] in words
        # Brand, words of the category, then a variant and a number if the title was taken.
        title = re.sub(r" No\. \d+$", "", product["title"].removeprefix(product["brand"] + " "))
        for variant in shopgen.GIFT_VARIANTS:
            title = title.removesuffix(" " + variant)
        assert set(title.split()) <= allowed, product["title"]
    with pytest.raises(FileNotFoundError, match="--vocab-from: no vocabulary source"):
        shopgen.generate(
            shopgen.ShopConfig(products=5, customers=1, events=5, vocab_from=str(tmp_path / "no")),
            tmp_path / "nothing",
        )
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--customers", "100", "--events", "50"], "--events: must be at least --customers (100)"),
        (["--click-rate", "1.5"], "--click-rate: must be between 0 and 1, got 1.5"),
        (["--start", "2024-13-01"], "--start: not a date YYYY-MM-DD: '2024-13-01'"),
        (["--categories", "5000"], "--categories: at most"),
    ],
)
def test_bad_parameters_exit_with_2_naming_the_option_and_write_nothing(
    tmp_path, capsys, arguments, message
):
    target = tmp_path / "shop"
    argv = ["--out", str(target), "--vocab-from", str(SHARED_DATA), "--vocab-sources", SOURCES]
    assert shopgen.main([*argv, "--products", "50", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not target.exists()


def test_spill_files_do_not_change_the_output(tiny, tmp_path, monkeypatch):
    folder, _ = tiny
    monkeypatch.setattr(shopgen, "SPILL_EVENTS", 300)  # 17 period files instead of one.
    shopgen.generate(_config(), tmp_path)
    assert (tmp_path / "events.csv").read_bytes() == (folder / "events.csv").read_bytes()


def test_many_slices_of_customers_give_a_sound_shop(tmp_path):
    report = shopgen.generate(_config(chunk_events=1_000), tmp_path)
    stats = shopgen.shop_stats(tmp_path)
    assert (stats["products"], stats["customers"], stats["events"]) == (200, 100, 5_000)
    assert not any(stats["problems"].values())
    assert stats["sessions"] == report["summary"]["sessions"]
    sessions = defaultdict(set)
    for event in _rows(tmp_path / "events.csv"):
        sessions[event["session_id"]].add(event["customer_id"])
    assert all(len(owners) == 1 for owners in sessions.values())


@pytest.mark.parametrize(("products", "customers", "events"), [(1, 1, 1), (3, 2, 7)])
def test_the_smallest_shops_are_complete(tmp_path, products, customers, events):
    shopgen.generate(_config(products=products, customers=customers, events=events), tmp_path)
    stats = shopgen.shop_stats(tmp_path)
    assert (stats["products"], stats["customers"], stats["events"]) == (
        products, customers, events,
    )  # fmt: skip
    assert not any(stats["problems"].values())
