"""``GET /metrics``: Prometheus metrics of this web host (docs/deployment.md, "Metrics").

- django-prometheus: requests, latency per view (``django_http_requests_latency_seconds_by_view_
  method``), responses by status, exceptions;
- recsite's counters of the serving path (``recommender/metrics.py``): lists served by kind,
  items by candidate source;
- read from the database at scrape time (``recommender.selectors.monitoring``): the age of the
  newest index and engine builds, jobs by kind and state (lost ones apart) with their durations.

Under gunicorn every worker's counters are summed (prometheus_client's multiprocess mode, set up
by ``gunicorn.conf.py`` through ``PROMETHEUS_MULTIPROC_DIR``), so a scrape sees the whole host
whichever worker answers. Readable by signed-in admins and by a scraper sending
``Authorization: Bearer <RECSITE_METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from accounts.roles import Scope
from accounts.selectors import user_scopes
from recommender.selectors.monitoring import builds_newest_finished, job_tallies


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        age = GaugeMetricFamily(
            "recsite_build_age_seconds",
            "Seconds since the newest READY build of each artifact was published (absent: none).",
            labels=["artifact"],
        )
        for artifact, finished in builds_newest_finished().items():
            if finished is not None:
                age.add_metric([artifact], (now - finished).total_seconds())
        yield age
        jobs = GaugeMetricFamily(
            "recsite_jobs", "Jobs in the job history, by kind and state.", labels=["kind", "state"]
        )
        lost = CounterMetricFamily(
            "recsite_jobs_lost",
            "Jobs failed because their worker died (killed, out of memory, machine lost).",
            labels=["kind"],
        )
        seconds = CounterMetricFamily(
            "recsite_job_seconds",
            "Seconds from start to end of the jobs that ended, by kind and final state.",
            labels=["kind", "state"],
        )
        ended = CounterMetricFamily(
            "recsite_jobs_ended",
            "Jobs that ended (with a start and an end), by kind and final state; with "
            "recsite_job_seconds_total, their mean duration.",
            labels=["kind", "state"],
        )
        lost_by_kind: dict[str, int] = {}
        for tally in job_tallies():
            jobs.add_metric([tally.kind, tally.state], tally.jobs)
            lost_by_kind[tally.kind] = lost_by_kind.get(tally.kind, 0) + tally.lost
            if tally.state in ("succeeded", "failed"):
                ended.add_metric([tally.kind, tally.state], tally.timed)
                seconds.add_metric([tally.kind, tally.state], tally.seconds)
        for kind, count in sorted(lost_by_kind.items()):
            lost.add_metric([kind], count)
        yield from (jobs, lost, ended, seconds)


class _ThisProcess(Collector):
    """The process's own registry (no multiprocess folder: runserver, tests)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return registry


def _allowed(request: HttpRequest) -> bool:
    token = settings.RECSITE_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    return Scope.ADMIN in user_scopes(request.user)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse(
            "Metrics are for admins and for scrapers that send "
            "'Authorization: Bearer <RECSITE_METRICS_TOKEN>'.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
