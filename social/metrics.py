"""The social app's Prometheus metrics (exposed at ``/metrics`` with the rest,
``recsite/metrics.py``): how often the per-process network cache answered, to size
``RECSITE_SOCIAL_NETWORK_CACHE_SECONDS`` and ``..._ENTRIES`` by (docs/deployment.md). A few
microseconds a list; gunicorn's workers are summed (prometheus_client's multiprocess mode)."""

from prometheus_client import Counter

NETWORK_CACHE = Counter(
    "recsite_social_network_cache",
    "Reads of the social source's per-process network cache: a customer's members (part "
    "members, one a list) and each member's newest events (part events, one a member), "
    "answered from the cache (hit) or the database (miss).",
    ["part", "result"],
)
MEMBERS_HIT = NETWORK_CACHE.labels("members", "hit")
MEMBERS_MISS = NETWORK_CACHE.labels("members", "miss")
EVENTS_HIT = NETWORK_CACHE.labels("events", "hit")
EVENTS_MISS = NETWORK_CACHE.labels("events", "miss")
