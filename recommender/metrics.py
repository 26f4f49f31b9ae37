"""recsite's own Prometheus metrics of the serving path (exposed at ``/metrics``, see
``recsite/metrics.py``; the rest, read from the database at scrape time, is there too).

Counting costs a few microseconds per served list: one increment for the list and one per
candidate source among its items. Under gunicorn the counts of all workers are summed
(prometheus_client's multiprocess mode, set up by ``gunicorn.conf.py``).
"""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter

LISTS_SERVED = Counter(
    "recsite_recommendation_lists",
    "Recommendation lists served (and logged for click attribution), by kind of list.",
    ["kind"],
)
ITEMS_SERVED = Counter(
    "recsite_recommended_items",
    "Items of the served lists by the candidate source that proposed them (an item proposed by "
    "several sources counts for each), by kind of list.",
    ["kind", "source"],
)


def list_served(*, kind: str, item_sources: Iterable[Iterable[str]]) -> None:
    LISTS_SERVED.labels(kind).inc()
    for source, count in Tally(source for sources in item_sources for source in sources).items():
        ITEMS_SERVED.labels(kind, source).inc(count)
