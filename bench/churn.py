"""Churn: the CDNOW converter for the evaluation, and the scoring benchmark.

    .venv/bin/python bench/churn.py cdnow-csv ../shared/data/cdnow/CDNOW_master.txt OUT_DIR
    DATABASE_URL=... .venv/bin/python bench/churn.py score [--retrain]

``cdnow-csv`` writes ``products.csv`` (one product, "CD": CDNOW records no titles) and
``events.csv`` (one purchase per line of the master file: quantity = CDs, value = dollars,
timestamp = midnight UTC of the day) in the interchange format, for ``manage.py import
OUT_DIR``. Event ids are ``cdnow-<line>``, so a re-import is a no-op.

``score`` times one churn job on the database of ``DATABASE_URL`` (settings
``recsite.settings.base`` unless ``DJANGO_SETTINGS_MODULE`` says otherwise): reading every
event, training (with its backtest) when asked or when no model exists, then scoring every
customer with a purchase, drivers included; it prints each stage's wall time.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def cdnow_csv(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "products.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "title", "category"])
        writer.writerow(["CD", "CD", "music"])
    rows = 0
    with source.open() as lines, (out / "events.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["event_id", "customer_id", "product_id", "event_type", "timestamp", "quantity",
             "value"]
        )  # fmt: skip
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if len(parts) != 4 or not parts[0].isdigit():
                continue  # The header line.
            customer, day, cds, dollars = parts
            moment = f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00+00:00"  # YYYYMMDD, UTC midnight
            writer.writerow(
                [f"cdnow-{number}", str(int(customer)), "CD", "purchase", moment, cds, dollars]
            )
            rows += 1
    print(f"{rows:,} purchases written to {out / 'events.csv'}")


def score(retrain: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    import django

    django.setup()
    from churn import selectors, services

    started = time.perf_counter()
    log = selectors.event_log_load()
    loaded = time.perf_counter()
    print(f"events read: {len(log):,} in {loaded - started:.1f} s")
    if retrain or selectors.churn_model_build_latest() is None:
        build = services.churn_model_train()
        print(f"trained {build.version} (with backtest) in {time.perf_counter() - loaded:.1f} s")
    begun = time.perf_counter()
    report = services.churn_scores_refresh()
    print(
        f"scored {report.customers:,} customers as of {report.as_of:%Y-%m-%d} in "
        f"{time.perf_counter() - begun:.1f} s (events read again included): {report.bands}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("cdnow-csv")
    convert.add_argument("source", type=Path)
    convert.add_argument("out", type=Path)
    timing = sub.add_parser("score")
    timing.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    if args.command == "cdnow-csv":
        cdnow_csv(args.source, args.out)
    else:
        score(args.retrain)


if __name__ == "__main__":
    main()
