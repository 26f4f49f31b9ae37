"""Experiment variants at serving time: the hook through which an experiments app assigns a
visitor to a variant, and what a variant changes in a served list.

``recommender`` never imports the app that runs experiments (``experiments``): that app
registers its assigner here from its ``AppConfig.ready()``, as apps register job kinds with the
jobs app. Without one (or with no running experiment covering the list) nothing changes.

An assigner is called on every served list, so it must answer from memory (the experiments app
holds its running experiments in a per-process ``Reloading`` cache, like the active
configuration): no database write and, between refreshes, no query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Baseline = Literal["", "popularity", "none"]


@dataclass(frozen=True, slots=True)
class ServedVariant:
    """What one variant of a running experiment serves.

    ``config_version``: the recommendation configuration version whose request-time fields the
    list uses (None: the active one). ``baseline``: ``"popularity"`` serves the engine's
    popularity source alone, ``"none"`` serves an empty list (still logged, so its visitors
    count). ``rules``: False serves without merchandising rules.
    """

    experiment_id: int
    variant: str
    config_version: int | None = None
    baseline: Baseline = ""
    rules: bool = True


# (list kind, visitor key) -> the variant serving that visitor, or None. The visitor key is
# "c:<customer id>" for a customer, "s:<session id>" for an anonymous session.
Assigner = Callable[[str, str], ServedVariant | None]

_assigners: list[Assigner] = []


def variant_assigner_register(assigner: Assigner) -> None:
    """Register ``assigner`` (once; registering the same function again changes nothing)."""
    if assigner not in _assigners:
        _assigners.append(assigner)


def variant_assign(*, kind: str, visitor: str) -> ServedVariant | None:
    """The variant that serves ``visitor`` on a list of ``kind``, if an experiment covers it."""
    if not visitor:
        return None
    for assigner in _assigners:
        variant = assigner(str(kind), visitor)
        if variant is not None:
            return variant
    return None


def customer_visitor(external_id: str) -> str:
    return f"c:{external_id}"


def session_visitor(session_id: str) -> str:
    return f"s:{session_id}" if session_id else ""
