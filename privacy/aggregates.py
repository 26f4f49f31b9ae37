"""Privacy-safe aggregates: suppression of small groups and the Laplace mechanism.

Framework-free (numpy only): the shareable reports (:mod:`privacy.services.reports`) compute
exact figures with the ORM and release them through these two mechanisms, and nothing else
decides what a report may show.

**k-suppression** (:func:`k_suppress`) is for tables of distinct customers per group where the
groups partition a population whose total is shown (each customer in exactly one group). A group
of fewer than ``k`` customers is suppressed ("primary" suppression; empty groups too: a 0 says
"nobody here" as clearly as a 1 says "one person"). Since the total is shown, one suppressed
cell could be recomputed as the total minus the shown cells, and two suppressed cells summing
to less than ``k`` would reveal a small group (their union) exactly; so further cells, the
smallest first, are suppressed ("complementary" suppression) until at least two cells are
suppressed and the suppressed cells hold at least ``k`` customers together. Every suppressed
cell reads the same (:data:`SUPPRESSED`): marking the complementary ones differently ("at
least k") would narrow the range of the small ones. A total below ``k`` is suppressed with every
cell.

**The Laplace mechanism** (:class:`LaplaceQuery`, :func:`laplace_release`) releases a vector of
figures with noise drawn from Laplace(0, b), b = Δ / ε, where Δ is the query's L1 sensitivity:
the most that adding or removing one customer (all of their data) can change the whole vector.
A count where each customer contributes at most once to each of ``m`` cells has Δ = m; a sum
whose per-customer contribution is clipped to C in each of ``m`` cells has Δ = m·C. The release
is then ε-differentially private for that unit. Rounding, clamping at zero and withholding a
cell whose *noisy* count is below ``k`` are post-processing and keep the guarantee. Releases
that read the same customers compose: their ε add up (a report splits its ε over its queries,
:func:`epsilon_split`).

Noise is drawn from a generator seeded by the operating system (:func:`noise_generator`); only
tests pass a seed. The sampler is numpy's floating-point Laplace: outputs are rounded (counts to
whole numbers, sums to whole currency units), which hides the low-order bits through which
floating-point samplers can leak (Mironov, 2012) in practice, though it is not a proof
(docs/privacy.md, "Privacy-safe aggregates").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: How a suppressed cell reads, whatever the reason it is suppressed.
SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class Cell:
    """One released figure: ``value`` (None when withheld) and how a report shows it."""

    value: float | None
    text: str

    @property
    def withheld(self) -> bool:
        return self.value is None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "text": self.text}


def _count_text(value: int) -> str:
    return f"{value:,}"


# k-suppression -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SuppressedTable:
    """A table of distinct customers per group after k-suppression.

    ``below_k`` and ``complementary`` say why each withheld cell is withheld; they are for the
    code and the tests, never released (the cells all read :data:`SUPPRESSED`).
    """

    k: int
    cells: dict[str, Cell]
    total: Cell
    below_k: frozenset[str]
    complementary: frozenset[str]


def k_suppress(counts: Mapping[str, int], *, k: int) -> SuppressedTable:
    """Suppress the groups of fewer than ``k`` customers in a table whose groups partition the
    population, and enough further groups that the shown total gives none of them back.

    ``counts``: distinct customers per group, every group listed (an empty one as 0); the total
    is their sum. Groups are taken in the order given; complementary suppression picks the
    smallest shown group first, the earlier one among equals.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if any(n < 0 for n in counts.values()):
        raise ValueError("counts must not be negative")
    total = sum(counts.values())
    if total < k:
        # The whole population is a small group: nothing of it is shown.
        withheld = Cell(None, SUPPRESSED)
        return SuppressedTable(
            k=k,
            cells=dict.fromkeys(counts, withheld),
            total=withheld,
            below_k=frozenset(g for g, n in counts.items() if n < k),
            complementary=frozenset(g for g, n in counts.items() if n >= k),
        )
    below = [g for g, n in counts.items() if n < k]
    suppressed = set(below)
    complementary: set[str] = set()
    order = {g: i for i, g in enumerate(counts)}
    while suppressed and (
        len(suppressed) < 2 or sum(counts[g] for g in suppressed) < k
    ):  # A lone suppressed cell is the total minus the rest; a small union is a small group.
        shown = [g for g in counts if g not in suppressed]
        if not shown:
            break  # Every cell is suppressed; their sum, the total, is at least k.
        smallest = min(shown, key=lambda g: (counts[g], order[g]))
        suppressed.add(smallest)
        complementary.add(smallest)
    cells = {
        g: Cell(None, SUPPRESSED) if g in suppressed else Cell(n, _count_text(n))
        for g, n in counts.items()
    }
    return SuppressedTable(
        k=k,
        cells=cells,
        total=Cell(total, _count_text(total)),
        below_k=frozenset(below),
        complementary=frozenset(complementary),
    )


# The Laplace mechanism -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LaplaceQuery:
    """One released vector: its L1 ``sensitivity`` (Δ, for one customer) and its ``epsilon``;
    ``bound`` says in words how each customer's contribution is bounded to get Δ."""

    measure: str
    sensitivity: float
    epsilon: float
    bound: str = ""

    def __post_init__(self) -> None:
        if not (self.sensitivity > 0 and math.isfinite(self.sensitivity)):
            raise ValueError(f"{self.measure}: sensitivity must be positive")
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"{self.measure}: epsilon must be positive")

    @property
    def scale(self) -> float:
        """The noise's scale b = Δ / ε (its standard deviation is b·√2)."""
        return self.sensitivity / self.epsilon

    def margin(self, confidence: float = 0.95) -> float:
        """The noise stays within ± this with probability ``confidence``: P(|X| > t) =
        exp(-t / b), so t = b · ln(1 / (1 - confidence))."""
        return self.scale * math.log(1.0 / (1.0 - confidence))

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "sensitivity": self.sensitivity,
            "epsilon": self.epsilon,
            "scale": self.scale,
            "margin95": round(self.margin(0.95), 2),
            "bound": self.bound,
        }


def noise_generator(seed: int | None = None) -> np.random.Generator:
    """The generator the noise is drawn from: seeded by the operating system's entropy unless
    a test passes ``seed`` (production code never does: a known seed is known noise)."""
    return np.random.default_rng(seed)


def laplace_noise(
    values: Sequence[float] | np.ndarray, *, query: LaplaceQuery, rng: np.random.Generator
) -> np.ndarray:
    """``values`` plus independent Laplace(0, Δ/ε) noise, one draw per value."""
    exact = np.asarray(values, dtype=np.float64)
    return exact + rng.laplace(0.0, query.scale, size=exact.shape)


def laplace_release(
    values: Sequence[float],
    *,
    query: LaplaceQuery,
    rng: np.random.Generator,
    k: int | None = None,
    decimals: int = 0,
) -> list[Cell]:
    """Noisy figures as a report shows them: rounded to ``decimals``, never below zero, and,
    with ``k``, a noisy value below ``k`` withheld as "< k" (counts of customers: a figure that
    small says nothing reliable, and a reader would take it literally). All post-processing."""
    cells = []
    for noisy in laplace_noise(values, query=query, rng=rng):
        value = max(0.0, round(float(noisy), decimals))
        if k is not None and value < k:
            cells.append(Cell(None, f"< {k}"))
        elif decimals == 0:
            cells.append(Cell(int(value), _count_text(int(value))))
        else:
            cells.append(Cell(value, f"{value:,.{decimals}f}"))
    return cells


def epsilon_split(epsilon: float, queries: int) -> float:
    """Each of ``queries`` releases' share of a total ``epsilon`` (sequential composition: the
    shares add up to the total)."""
    if queries < 1:
        raise ValueError("no query to split epsilon over")
    return epsilon / queries
