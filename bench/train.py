"""Where ``manage.py train`` spends its time: each part of one real run, on the CPU.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/recsite_bench_train \\
        RECSITE_VAR_DIR=/tmp/recsite-bench-train-var \\
        nice -n 15 .venv/bin/python bench/train.py

Runs ``manage.py train`` (the train job's four steps, in this process, with the settings in
effect: ``RECSITE_AUTOTUNE_SECONDS``, ``RECSITE_RERANKER``, ``RECSITE_FIT_THREADS``,
``RECSITE_SEQUENTIAL*``) on a
prepared database: one with a catalogue, events and a vector index (``import_online_retail``
or ``import``, then ``reindex``). The train job activates a tuned configuration version and
publishes an engine build there, as it would in a shop: use a copy of an evaluation database
(``createdb -T``), not one whose state matters.

The run is observed, not changed: the services it calls are wrapped only to read the clock
around them, and every engine fit reports its own parts (``HybridEngine.fit_seconds``: the
popularity lists, item-kNN, EASE, co-occurrence, the cold look-alikes). Printed: one row per
part (the step it belongs to, seconds, share of the whole run), the configuration the search
chose, the machine and the load average before and after. The sequential step's parts are its
training (on ``RECSITE_SEQUENTIAL_DEVICE``: the CPU here unless a GPU is present; its
sequences/s are in the command's output) and its validation gate (an engine fit on the
validation split and two rankings of its customers).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")


@dataclass
class Part:
    name: str
    seconds: float = 0.0
    parts: list[Part] = field(default_factory=list)


class Timeline:
    """Named parts in the order they ran; parts nest (a fit inside the reranker training)."""

    def __init__(self) -> None:
        self.root = Part("root")
        self.open = [self.root]

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[Part]:
        node = Part(name)
        self.open[-1].parts.append(node)
        self.open.append(node)
        started = time.perf_counter()
        try:
            yield node
        finally:
            node.seconds = time.perf_counter() - started
            self.open.pop()

    def add(self, name: str, seconds: float) -> None:
        self.open[-1].parts.append(Part(name, seconds))

    def rows(self) -> list[tuple[int, str, float]]:
        """(depth, name, seconds) in run order; a part with parts ends with what they do not
        account for (from 0.05 s), so each level adds up to its parent."""
        out: list[tuple[int, str, float]] = []

        def walk(node: Part, depth: int) -> None:
            out.append((depth, node.name, node.seconds))
            for child in node.parts:
                walk(child, depth + 1)
            rest = node.seconds - sum(child.seconds for child in node.parts)
            if node.parts and rest >= 0.05:
                out.append((depth + 1, "rest of the part (not timed separately)", rest))

        for top in self.root.parts:
            walk(top, 0)
        return out


def _timed(timeline: Timeline, owner: Any, attribute: str, label: str) -> None:
    """Replace ``owner.attribute`` by a function that times it under ``label``."""
    original: Callable[..., Any] = getattr(owner, attribute)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with timeline.part(label):
            return original(*args, **kwargs)

    setattr(owner, attribute, timed)


def _observe(timeline: Timeline) -> None:
    from recommender.ml.engine import HybridEngine
    from recommender.services import autotune, recommendations, sequential, tuning
    from recommender.services.recommendations import fitting

    _timed(timeline, autotune, "config_autotune", "step autotune")
    _timed(timeline, recommendations, "engine_build", "step fit")
    _timed(timeline, tuning, "tuning_sample", "step tuning-sample")
    _timed(timeline, autotune, "engine_data_load", "read catalogue and events")
    _timed(timeline, autotune, "search_blend", "blend search (validation fit included)")
    _timed(timeline, fitting, "engine_data_load", "read catalogue and events")
    _timed(timeline, fitting, "learn_reranker", "reranker training (its fit included)")
    _timed(timeline, tuning, "engine_data_load", "read catalogue and events")
    _timed(timeline, tuning, "_sample_build", "tuning-page sample (its fit included)")
    _timed(timeline, sequential, "sequential_build", "step sequential")
    _timed(timeline, sequential, "engine_data_load", "read catalogue and events")
    _timed(timeline, sequential, "fit_sequential", "sequential model training")
    _timed(timeline, sequential, "sequential_gate", "sequential gate (validation fit included)")
    fit = HybridEngine.fit
    save = HybridEngine.save

    def observed_fit(self: Any, data: Any, **kwargs: Any) -> Any:
        with timeline.part(f"engine fit ({len(data.item_ids)} products)"):
            result = fit(self, data, **kwargs)
            for name, seconds in self.fit_seconds.items():
                timeline.add(name, seconds)
        return result

    def observed_save(self: Any, path: Any) -> Any:
        with timeline.part("save the engine file"):
            return save(self, path)

    HybridEngine.fit = observed_fit  # type: ignore[method-assign]
    HybridEngine.save = observed_save  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench._support import cpu_model
    from jobs.models import Job
    from recommender.models import Customer, Event, Product

    load_before = os.getloadavg()
    timeline = Timeline()
    _observe(timeline)
    out = io.StringIO()
    with timeline.part("manage.py train"):
        call_command("train", "--no-progress", stdout=out, stderr=io.StringIO())
    load_after = os.getloadavg()
    job = Job.objects.filter(kind="train").order_by("-pk").first()
    assert job is not None
    rows = timeline.rows()
    total = rows[0][2]

    print(
        f"{Product.objects.count()} products, {Customer.objects.count()} customers, "
        f"{Event.objects.count()} events; {cpu_model()}, {os.cpu_count()} cores; "
        f"RECSITE_AUTOTUNE_SECONDS={settings.RECSITE_AUTOTUNE_SECONDS:g}, "
        f"RECSITE_RERANKER={settings.RECSITE_RERANKER}, "
        f"RECSITE_FIT_THREADS={settings.RECSITE_FIT_THREADS}, "
        f"RECSITE_SEQUENTIAL={settings.RECSITE_SEQUENTIAL} "
        f"(budget {settings.RECSITE_SEQUENTIAL_MAX_SECONDS:g} s, "
        f"device {settings.RECSITE_SEQUENTIAL_DEVICE}, "
        f"{settings.RECSITE_SEQUENTIAL_THREADS} thread(s))"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)\n")
    print("| part | seconds | share |\n|---|---|---|")
    for depth, name, seconds in rows:
        indent = "&nbsp;&nbsp;" * depth
        print(f"| {indent}{name} | {seconds:.1f} | {seconds / total:.1%} |")
    print(f"\nJob {job.pk} ({job.state}); the command printed:")
    print(out.getvalue().strip())


if __name__ == "__main__":
    main()
