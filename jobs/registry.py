"""The job kinds apps register, each a label and a list of weighted steps.

An app registers its kinds from its ``AppConfig.ready()`` (``recommender.apps``,
``tagging.apps``, ``churn.apps``): the job table, its progress bar, history and lost-worker
sweep are shared, yet this app imports none of them, and a new kind needs no migration here
(``Job.kind`` is a plain column; :func:`jobs.services.runs.job_create` refuses an unregistered
kind). Progress runs from 0 to 100 across a kind's steps in proportion to their weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Job

Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    weight: float
    run: Callable[[Job, Progress], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class JobKindSpec:
    kind: str
    label: str
    steps: tuple[Step, ...]


class UnknownJobKind(LookupError):
    """No app registered this job kind."""


_KINDS: dict[str, JobKindSpec] = {}


def job_kind_register(kind: str, label: str, steps: tuple[Step, ...]) -> None:
    """Register a job kind: its label (the dashboard's and the API's) and its steps in order.

    Registering the same kind again with the same steps is harmless (``ready()`` may run twice
    in tests); with other steps it is a programming error.
    """
    kind = str(kind)
    if not steps:
        raise ValueError(f"{kind}: a job kind needs at least one step")
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"{kind}: step names repeat: {names}")
    registered = _KINDS.get(kind)
    if registered is not None and [s.name for s in registered.steps] != names:
        raise ValueError(f"{kind}: already registered with other steps")
    _KINDS[kind] = JobKindSpec(kind=kind, label=str(label), steps=tuple(steps))


def job_kind_get(kind: str) -> JobKindSpec:
    try:
        return _KINDS[str(kind)]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise UnknownJobKind(f"job kind {kind!r} is not registered (known: {known})") from None


def job_kind_steps(kind: str) -> tuple[Step, ...]:
    return job_kind_get(kind).steps


def job_kind_label(kind: str) -> str:
    spec = _KINDS.get(str(kind))
    return spec.label if spec is not None else str(kind)


def registry() -> dict[str, JobKindSpec]:
    """The registered kinds by name (tests register a kind of their own and remove it)."""
    return _KINDS


def job_kind_choices() -> list[tuple[str, str]]:
    """``(kind, label)`` of every registered kind, in registration order (INSTALLED_APPS)."""
    return [(spec.kind, spec.label) for spec in _KINDS.values()]
