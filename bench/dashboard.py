"""Dashboard response times on an imported, fitted database (the demo's, for instance).

    DATABASE_URL=sqlite:///$PWD/var/recsite.sqlite3 .venv/bin/python bench/dashboard.py [--repeat 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_dbscale_1m \
        .venv/bin/python bench/dashboard.py --lists-only      # a generated 1M/50M shop

Signs in as a throwaway admin through Django's test client (no HTTP server, so this is the
time of the view itself) and prints, per page, the first and the median of the following
``--repeat`` answers; then the tuning preview: the active configuration, and a blend-weight
change and a diversity-λ change, each answered ``--repeat`` times with alternating values.
The first preview after a fit prepares the metric sample (``manage.py train`` does that in the
train job already). Uses the newest customer and product with events for the detail pages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(call) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"{response.request['PATH_INFO']}: HTTP {response.status_code}")
    return elapsed * 1000


def list_pages(client, repeat: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """The pages that must answer within a second at 1M products and 50M events."""
    from recommender.models import Customer, Product

    category = Product.objects.exclude(category="").values_list("category", flat=True).first() or ""
    brand = Product.objects.exclude(brand="").values_list("brand", flat=True).first() or ""
    last_page = max(Product.objects.count() // 50, 1)
    some_customer = Customer.objects.order_by("-pk").values_list("external_id", flat=True).first()
    pages = [
        "/dashboard/",
        "/dashboard/products/",
        "/dashboard/products/?page=2",
        f"/dashboard/products/?page={last_page // 2}",
        f"/dashboard/products/?category={category}",
        f"/dashboard/products/?brand={brand}",
        "/dashboard/products/?active=true&embedded=false",
        "/dashboard/products/?q=blue",
        "/dashboard/customers/",
        "/dashboard/customers/?order=events",
        "/dashboard/customers/?order=recent",
        f"/dashboard/customers/?q={(some_customer or '')[-4:]}",
        "/dashboard/customers/?page=1000",
        "/dashboard/jobs/",
        "/dashboard/rules/",
        "/dashboard/evaluation/",
    ]
    return time_pages(client, pages, repeat)


def time_pages(client, pages: list[str], repeat: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Print (and return) the first answer's time and the median of the next ``repeat`` for
    each page."""
    print(f"{'page':52} {'first ms':>9} {'median ms':>10}")
    figures = {}
    for path in pages:
        first = timed(lambda path=path: client.get(path))
        rest = [timed(lambda path=path: client.get(path)) for _ in range(repeat)]
        median = statistics.median(rest)
        print(f"{path:52} {first:9.0f} {median:10.0f}", flush=True)
        figures[path] = {"first_ms": round(first), "median_ms": round(median)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--lists-only",
        action="store_true",
        help="Only the overview and the list pages (no engine needed): products with filters "
        "and a deep page, customers in each order, jobs, rules, evaluations.",
    )
    parser.add_argument(
        "--json", action="store_true", help="End with one line of JSON: every page's times."
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from recommender.dashboard.tuning import TuningForm
    from recommender.models import Event
    from recommender.services.recommendations import engine_config_active

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench-dashboard").first()
    if user is None:
        user = user_create_with_role(
            username="bench-dashboard", password=os.urandom(16).hex(), role=Role.ADMIN
        )
    client = Client()
    client.force_login(user)
    figures = list_pages(client, args.repeat)
    if args.lists_only:
        if args.json:
            print(json.dumps(figures))
        return
    newest = Event.objects.filter(product__isnull=False).select_related("customer", "product")
    event = newest.order_by("-occurred_at").first()
    if event is None:
        sys.exit("no events: import and fit first (./scripts/demo.sh --no-serve)")
    pages = [
        "/dashboard/products/?search=red+heart+candle",
        f"/dashboard/products/{event.product.external_id}/",
        f"/dashboard/customers/{event.customer.external_id}/",
        "/dashboard/tuning/",
        "/dashboard/tags/",
        "/dashboard/churn/",
    ]
    figures.update(time_pages(client, pages, args.repeat))

    _, active = engine_config_active()
    base = {k: ("" if v is None else v) for k, v in TuningForm.initial_for(active).items()}
    base["customers"] = ""

    def preview(**changes: object) -> float:
        return timed(lambda: client.post("/dashboard/tuning/preview", {**base, **changes}))

    print(f"\n{'tuning preview':52} {'first ms':>9} {'median ms':>10}")
    first = preview()
    rest = [preview() for _ in range(args.repeat)]
    print(f"{'active configuration':52} {first:9.0f} {statistics.median(rest):10.0f}")
    figures["tuning preview"] = {
        "first_ms": round(first),
        "median_ms": round(statistics.median(rest)),
    }
    semantic = float(base["w_semantic"])
    for label, field, values in (
        ("blend weight (semantic)", "w_semantic", (semantic + 0.1, semantic)),
        ("diversity λ", "mmr_lambda", (0.7, 0.8)),
    ):
        times = [preview(**{field: values[i % 2]}) for i in range(args.repeat + 1)]
        print(f"{label:52} {times[0]:9.0f} {statistics.median(times[1:]):10.0f}")
        figures[f"tuning preview: {label}"] = {
            "first_ms": round(times[0]),
            "median_ms": round(statistics.median(times[1:])),
        }
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
