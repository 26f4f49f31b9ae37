"""Per-request cost of the social source (issue 19), on a database with relationships.

    nice -n 10 .venv/bin/python bench/social.py --database recsite_h19 [--sample 300] [--rounds 3]

For a seeded sample of customers with at least one relationship: the time of the network read
the serving path adds to a request (``social.selectors.customer_network``: the strongest edges,
the second hop, each member's newest events; bounded by ``MAX_DIRECT``, ``MAX_SECOND_HOP`` and
``MAX_MEMBER_EVENTS``), and of the engine's scoring of that network
(``recommender.ml.engine.social.social_scores``), each as p50/p90/p99/max in milliseconds, with
the network sizes. Nothing is written. On Ciao the database comes from ``manage.py import_ciao``.

The uncached read is timed two ways, alternating customer by customer (and which goes first),
so both see the same machine load: as served without the network cache (PostgreSQL: one
statement) and as three queries (the strongest edges, the second hop, a LATERAL read of the
members' events: the read before issue 19's serving work, still the fallback's shape). Both
must return the same network; the bench stops if they differ. Printed as well: the ratio of
their medians.

Then the read through the process's network cache (``RECSITE_SOCIAL_NETWORK_CACHE_SECONDS``,
30 s when the setting turns it off), one pass over the sample each: from an empty cache
(members shared by several networks are read once), with everything held, and with the
customers' members forgotten but their members' events held (a customer's first list while
the people they follow are in the cache). Each must return the network the uncached read did.
Last, what the cache holds after one pass from empty (``tracemalloc``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):6.2f}  p90 {at(0.9):6.2f}  p99 {at(0.99):6.2f}  "
        f"max {ordered[-1]:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="Passes over the sample.")
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=f"{args.server}/{args.database}",
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
    )
    import django

    django.setup()
    import numpy as np
    from django.conf import settings
    from django.db.models import Max

    from recommender.ml.engine import HybridEngine
    from recommender.ml.engine.social import social_scores
    from recommender.models import Event, Product
    from social import selectors
    from social.models import Relationship
    from social.selectors import customer_network

    sources = sorted(set(Relationship.objects.values_list("source_id", flat=True)))
    chosen = random.Random(args.seed).sample(sources, min(args.sample, len(sources)))
    now = Event.objects.aggregate(latest=Max("occurred_at"))["latest"].timestamp()
    engine = HybridEngine()  # Only the id -> row lookup is needed to score a network.
    engine._ids = np.array(sorted(Product.objects.values_list("pk", flat=True)), dtype=np.int64)
    engine.fitted_at = now
    window = settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS or 30.0
    settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = 0.0  # The two reads below: never cached.
    customer_network(customer_id=chosen[0], now=now)  # Warm the connection.
    arms = {
        "as served": customer_network,
        "three queries": lambda customer_id, now: selectors._network_per_query(
            customer_id, now=now
        ),
    }
    reads: dict[str, list[float]] = {name: [] for name in arms}
    scores, members, events = [], [], []
    uncached: dict[int, tuple[object, ...]] = {}
    for round_number in range(args.rounds):
        for i, customer_id in enumerate(chosen):
            order = list(arms) if (i + round_number) % 2 == 0 else list(reversed(arms))
            got = {}
            for name in order:
                started = time.perf_counter()
                got[name] = arms[name](customer_id=customer_id, now=now)
                reads[name].append((time.perf_counter() - started) * 1000)
            network = got["as served"]
            three, events_of = got["three queries"]
            if [(m.customer_id, m.hop, m.weight, m.relation) for m in network] != three or any(
                list(zip(m.product_ids, m.event_types, m.timestamps, strict=True))
                != events_of[m.customer_id]
                for m in network
            ):
                sys.exit(f"customer {customer_id}: the two reads return different networks")
            if round_number == 0:
                uncached[customer_id] = network
                started = time.perf_counter()
                social_scores(engine, network, (), now=now)
                scores.append((time.perf_counter() - started) * 1000)
                members.append(len(network))
                events.append(sum(len(m.product_ids) for m in network))
    print(f"{len(chosen)} customers with relationships (of {len(sources):,}); now = newest event")
    print(f"  network members: median {statistics.median(members):.0f}, max {max(members)}")
    print(f"  member events:   median {statistics.median(events):.0f}, max {max(events)}")
    for name, values in reads.items():
        print(f"  read, {name:13s} {_percentiles(values)}  ({len(values)} reads)")
    ratio = statistics.median(reads["as served"]) / statistics.median(reads["three queries"])
    print(f"  as served / three queries, medians: {ratio:.2f}")
    print(f"  social scoring   {_percentiles(scores)}")

    settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = window
    selectors.network_cache_forget()
    print(f"the read through the network cache ({window:g} s), one pass each:")
    for label in ("from an empty cache", "everything held", "members read, events held"):
        if label == "members read, events held":
            selectors._member_lists.forget()
        timings = []
        for customer_id in chosen:
            started = time.perf_counter()
            network = customer_network(customer_id=customer_id, now=now)
            timings.append((time.perf_counter() - started) * 1000)
            if network != uncached[customer_id]:
                sys.exit(f"customer {customer_id}: the cached read returns another network")
        print(f"  {label:26s} {_percentiles(timings)}")
    # What the cache holds after one pass: a fresh pass with allocations traced (slower, untimed).
    selectors.network_cache_forget()
    tracemalloc.start()
    for customer_id in chosen:
        customer_network(customer_id=customer_id, now=now)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lists, people = len(selectors._member_lists), len(selectors._member_events)
    print(
        f"  held after a pass: {held / 1e6:.1f} MB for {lists} customers' members and {people} "
        f"members' events ({held / 1e3 / (lists + people):.2f} KB an entry)"
    )


if __name__ == "__main__":
    main()
