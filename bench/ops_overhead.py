"""What the production hardening (rate limits, CSP, metrics, JSON logs) costs a recommendation
request, measured in one process so that machine load cannot tell the arms apart.

    .venv/bin/python bench/ops_overhead.py [--database recsite_bench_serve] [--requests 2000]

Uses a database prepared by ``bench/serve.py --keep-db`` (the real UCI Online Retail shop, its
index and engine). Times, for the same fixed sample of customers:

1. ``GET /api/v1/customers/<id>/recommendations?k=10`` through Django's full request stack
   (test client, no sockets), alternating request by request between two handlers: the
   project's middleware, and the same without that hardening (django-prometheus' before
   middleware and recsite's request-metrics one, the Content-Security-Policy middleware,
   django-axes' middleware). Metrics run in prometheus_client's multiprocess mode, as under
   gunicorn.
2. The rate limit every API request pays (``accounts.throttling.ScopeRateThrottle``), with the
   default per-process cache and with a Redis cache (``--redis``, as ``RECSITE_CACHE_URL``).
3. The served-list counters (``recommender.metrics.list_served``) for a 10-item list.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ADDED_MIDDLEWARE = (
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "recsite.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
    "recsite.middleware.RequestMetricsMiddleware",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="recsite_bench_serve")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--requests", type=int, default=2000, help="Timed requests per arm.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    median, mean = statistics.median(values), statistics.fmean(values)
    return f"median {median:8.3f}  p90 {p(0.9):8.3f}  mean {mean:8.3f}"


def main() -> None:
    args = parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        DATABASE_URL=f"{args.server}/{args.database}",
        RECSITE_VAR_DIR=os.environ.get("RECSITE_VAR_DIR", f"/tmp/{args.database}-var"),
        RECSITE_LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver",
        PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="bench-metrics-"),
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.test import Client, override_settings
    from rest_framework.test import APIRequestFactory

    from accounts.services import api_token_create
    from accounts.throttling import ScopeRateThrottle
    from recommender.api.recommendations import CustomerRecommendationsApi
    from recommender.metrics import list_served
    from recommender.models import Customer

    random.seed(args.seed)
    ids = list(Customer.objects.order_by("pk").values_list("external_id", flat=True))
    sample = random.sample(ids, min(500, len(ids)))
    _, token = api_token_create(name="bench-ops-overhead", scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    paths = [f"/api/v1/customers/{c}/recommendations?k=10" for c in sample]

    full = Client()
    with override_settings(
        MIDDLEWARE=[m for m in settings.MIDDLEWARE if m not in ADDED_MIDDLEWARE]
    ):
        bare = Client()
        bare.get(paths[0], **auth)  # Loads this handler's middleware chain, without the four.
    for path in paths[:50]:  # Warm: the engine, the index, the token cache, both handlers.
        assert full.get(path, **auth).status_code == 200
        assert bare.get(path, **auth).status_code == 200

    arms: dict[str, list[float]] = {"with": [], "without": []}
    order = [("with", full), ("without", bare)]
    for i in range(args.requests):
        path = paths[i % len(paths)]
        for name, client in order if i % 2 == 0 else reversed(order):
            started = time.perf_counter()
            response = client.get(path, **auth)
            arms[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
    deltas = [a - b for a, b in zip(arms["with"], arms["without"], strict=True)]

    print(
        f"GET customers/<id>/recommendations?k=10, {args.requests} requests per arm, "
        f"alternating, in-process (ms):"
    )
    print(f"  with the added middleware     {summary(arms['with'])}")
    print(f"  without it                    {summary(arms['without'])}")
    print(f"  paired difference             {summary(deltas)}")

    factory = APIRequestFactory()
    view = CustomerRecommendationsApi()
    for label, cache_settings in (
        ("per-process cache (default)",
         {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}),
        ("Redis cache", {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                         "LOCATION": args.redis, "KEY_PREFIX": "bench-ops-overhead"}),
    ):  # fmt: skip
        with override_settings(CACHES={"default": cache_settings}):
            caches["default"].clear()
            request = factory.get("/")
            request.auth = None
            request.user = type("U", (), {"is_authenticated": True, "pk": 1})()
            throttle = ScopeRateThrottle()
            calls = 5000
            started = time.perf_counter()
            for _ in range(calls):
                assert throttle.allow_request(request, view)
            per_call = (time.perf_counter() - started) / calls * 1e6
            caches["default"].clear()
        print(f"rate limit, {label}: {per_call:.1f} µs a request")

    sources = [("semantic", "collaborative"), ("collaborative",), ("popularity",)] * 3 + [
        ("trending",)
    ]
    calls = 20000
    started = time.perf_counter()
    for _ in range(calls):
        list_served(kind="customer", item_sources=sources)
    per_list = (time.perf_counter() - started) / calls * 1e6
    print(f"served-list counters, 10 items: {per_list:.1f} µs a list")


if __name__ == "__main__":
    main()
