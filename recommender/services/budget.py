"""Memory budgets of fits and builds: estimate first, refuse early, never get killed.

A fit of a large shop that runs out of memory is killed by the kernel half-way, with no error
anyone can read and nothing to learn from. So every fit (and index build) first estimates its
peak from counts the database gives cheaply, compares it with ``RECSITE_FIT_MEMORY_BUDGET`` and
stops before allocating anything large when it would not fit, with an error that names the
setting, the size needed and what takes it. The serving artifacts stay as they were.

The estimates are upper bounds calibrated on measured fits (``bench/scale.py`` prints the
estimate beside the measured peak RSS; docs/scale.md has the figures).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from dataclasses import dataclass, field

from django.conf import settings

from recommender.ml.engine.fitting import COOCCURRENCE_NEIGHBOURS
from recommender.ml.neighbours import ease_memory_bytes

# Python, Django, numpy, scipy, implicit and the rest of a worker before it reads any data. A
# process that already holds more (a worker that loaded the language model, or kept the memory
# of an earlier step: Python rarely hands it back) is planned at what it holds.
PROCESS_BASE = 400 * 2**20
# Per event, at the peak of a fit (the item-kNN step): the interaction columns (29 bytes), the
# user x item matrix (12) and the neighbour computation's float64 copy and transpose (24).
# Measured: 73 bytes an event at 50 million events (bench/fit_memory.py, docs/benchmarks.md,
# "Calibrating the fit's memory estimate"); planned with a fifth more.
FIT_BYTES_PER_EVENT = 90
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryBudgetExceeded(Exception):
    """A fit or build would need more memory than ``RECSITE_FIT_MEMORY_BUDGET`` allows."""


def parse_bytes(text: str, *, setting: str = "RECSITE_FIT_MEMORY_BUDGET") -> int:
    """``"8G"``, ``"512M"``, ``"1.5G"`` or a number of bytes; ``"auto"``: 60% of this machine's
    memory. A bad value raises ``ValueError`` naming ``setting``."""
    value = str(text).strip().upper().removesuffix("IB").removesuffix("B") or "AUTO"
    if value == "AUTO":
        return int(0.6 * physical_memory())
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)", value)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"{setting}: expected a size such as 8G, 512M or a number of bytes, or auto; "
            f"got {text!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def process_memory() -> int:
    """What this process holds before a fit or build starts: its resident memory now, at least
    ``PROCESS_BASE`` (where it cannot be read).

    Memory an earlier step freed is first handed back to the system (glibc's ``malloc_trim``):
    otherwise it would count as held although the fit reuses it. A train job's automatic tuning
    left about 1.7 GiB of freed arrays in the process at a million products, which alone made
    the estimate exceed the default budget.
    """
    _release_free_memory()
    return max(PROCESS_BASE, PeakMemory.current() or 0)


def _release_free_memory() -> None:
    """Return the heap's free pages to the system, where the C library can (glibc)."""
    with contextlib.suppress(OSError, AttributeError):  # Not glibc (musl, macOS): nothing.
        ctypes.CDLL(None).malloc_trim(0)


def memory_budget() -> int:
    """The budget of one fit or build, in bytes (``RECSITE_FIT_MEMORY_BUDGET``)."""
    return parse_bytes(settings.RECSITE_FIT_MEMORY_BUDGET)


def human(size: float) -> str:
    """1536 -> '1.5 KiB'; for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


@dataclass(frozen=True)
class MemoryEstimate:
    """What a job expects to hold at its peak, by part (bytes)."""

    what: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def as_dict(self) -> dict[str, int]:
        return {**self.parts, "total": self.total}

    def check(self, budget: int | None = None) -> None:
        """Raise :class:`MemoryBudgetExceeded` when the estimate exceeds the budget."""
        budget = memory_budget() if budget is None else budget
        if self.total <= budget:
            return
        biggest = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        detail = ", ".join(f"{name} {human(size)}" for name, size in biggest)
        raise MemoryBudgetExceeded(
            f"{self.what} needs about {human(self.total)} of memory ({detail}), more than "
            f"RECSITE_FIT_MEMORY_BUDGET allows ({human(budget)}). Raise the setting on a "
            "machine with more memory; nothing was changed and the current artifacts keep "
            "serving."
        )


@dataclass(frozen=True)
class FitPlan:
    """How a fit will run: which collaborative model, and the memory it expects."""

    items: int
    events: int
    dimension: int
    ease_max_items: int
    estimate: MemoryEstimate

    @property
    def uses_ease(self) -> bool:
        return 0 < self.items <= self.ease_max_items


def fit_plan(
    *,
    items: int,
    events: int,
    dimension: int,
    neighbours: int,
    budget: int | None = None,
    process: int | None = None,
) -> FitPlan:
    """The fit's plan for a catalogue of ``items`` products and ``events`` events.

    EASE serves when its dense matrix fits beside everything else within the budget and the
    catalogue is within ``RECSITE_EASE_MAX_ITEMS`` (its O(n^3) time); item-kNN otherwise. The
    plan's estimate is checked against the budget by the caller (``plan.estimate.check()``).
    ``process`` is what the process holds before the fit (default: :func:`process_memory`).
    """
    budget = memory_budget() if budget is None else budget
    vectors = 4 * items * dimension
    per_item = 8 * 4 + 200  # Scores, flags, titles and categories while loading.
    # The two neighbour steps run one after the other, so the larger of them counts: item-kNN
    # (implicit's int64/int64/float64 triples, products x (k + 1) whatever the data, beside the
    # entries kept from them as int32/int32/float32), then co-occurrence (the item-kNN lists
    # kept, the co-occurrence lists and their pruned copy).
    knn_step = (24 + 12) * items * (neighbours + 1)
    cooccurrence_step = 8 * items * neighbours + 2 * 8 * items * COOCCURRENCE_NEIGHBOURS
    neighbour_lists = max(knn_step, cooccurrence_step)
    parts = {
        "process": process_memory() if process is None else process,
        "events": FIT_BYTES_PER_EVENT * events,
        "product vectors": vectors,
        "catalogue": per_item * items,
        "neighbour lists": neighbour_lists,
    }
    limit = min(settings.RECSITE_EASE_MAX_ITEMS, items)
    room = budget - sum(parts.values())
    while limit > 0 and ease_memory_bytes(limit) > room:
        limit = int(limit * 0.9)
    if 0 < items <= limit:
        parts["EASE matrix"] = ease_memory_bytes(items)
    return FitPlan(
        items=items,
        events=events,
        dimension=dimension,
        ease_max_items=limit,
        estimate=MemoryEstimate(what="Fitting the engine", parts=parts),
    )


def fit_customers(plan: FitPlan, *, customers: int, budget: int | None = None) -> int:
    """How many of ``customers`` (the plan's events between them) a fit planned by ``plan`` can
    learn from within the budget: all of them when the plan fits, else the share of them whose
    events fit beside the rest of it (the events are the only part that shrinks with a customer
    sample). Raises :class:`MemoryBudgetExceeded` when none can."""
    budget = memory_budget() if budget is None else budget
    if plan.estimate.total <= budget:
        return customers
    # Over the budget, the plan holds no EASE matrix (fit_plan plans one only within it).
    per_events = plan.estimate.parts["events"]
    room = budget - (plan.estimate.total - per_events)
    fitting = int(customers * room / per_events) if room > 0 and per_events else 0
    if fitting <= 0:
        plan.estimate.check(budget)  # Raises, naming the biggest parts.
    return min(fitting, customers)


def index_build_estimate(
    *, items: int, dimension: int, m: int, process: int | None = None
) -> MemoryEstimate:
    """An hnswlib build: what the process holds (default :func:`process_memory`), the vectors
    as read and the graph (vectors, links, labels)."""
    graph = items * (4 * dimension + 4 * (2 * m + 1) + 8 + 64)
    return MemoryEstimate(
        what="Building the vector index",
        parts={
            "process": process_memory() if process is None else process,
            "vectors read": 4 * items * dimension,
            "hnswlib graph": graph,
        },
    )


class PeakMemory:
    """The process's peak resident memory over a block (Linux: VmHWM, reset at the start
    through /proc/self/clear_refs; elsewhere ``peak`` stays None)."""

    def __init__(self) -> None:
        self.peak: int | None = None

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # Resets the high-water mark of this process.
        except OSError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kib("VmHWM")

    @staticmethod
    def current() -> int | None:
        return _status_kib("VmRSS")


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
