"""Relationship rows: one parser for every door (batch API, CSV and JSON Lines files).
Framework-free; it reuses recommender's row checks (``recommender.ingestion.records``), so an id
or a timestamp is refused for the same reason with the same message as anywhere else.

Fields: ``customer_id`` (the one who follows, trusts, is a friend, or was referred),
``target_customer_id``, ``type`` (``follows``, ``trusts``, ``friend``, ``referred_by``),
optional ``weight`` (a number > 0, default 1) and ``created_at`` (ISO 8601, default: when
received). A ``friend`` row stands for two edges, one each way.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recommender.ingestion.records import MAX_ID_LENGTH, _Row, json_type

RELATIONSHIP_FIELDS = ("customer_id", "target_customer_id", "type", "weight", "created_at")
REQUIRED_RELATIONSHIP_COLUMNS = ("customer_id", "target_customer_id", "type")
RELATIONSHIP_TYPES = ("follows", "trusts", "friend", "referred_by")
MAX_WEIGHT = 1e6


@dataclass(frozen=True, slots=True)
class RelationshipRecord:
    customer_id: str
    target_customer_id: str
    type: str
    weight: float
    created_at: datetime

    def edges(self) -> list[tuple[str, str]]:
        """The directed edges this row stands for: (source, target), two for a friendship."""
        if self.type == "friend":
            return [(self.customer_id, self.target_customer_id),
                    (self.target_customer_id, self.customer_id)]  # fmt: skip
        return [(self.customer_id, self.target_customer_id)]


def parse_relationship(
    raw: Mapping[str, Any],
    *,
    now: datetime,
    allowed: Collection[str] | None = RELATIONSHIP_FIELDS,
    typed: bool = True,
) -> RelationshipRecord:
    """Parse one relationship; raises ``RowError`` naming every bad field."""
    row = _Row(raw, allowed=allowed, typed=typed)
    source = row.text("customer_id", max_length=MAX_ID_LENGTH, required=True, merchant_id=True)
    target = row.text(
        "target_customer_id", max_length=MAX_ID_LENGTH, required=True, merchant_id=True
    )
    kind = row.text("type", max_length=16, required=True)
    if kind and kind not in RELATIONSHIP_TYPES:
        row.fail("type", f"unknown type {kind!r}; expected one of {list(RELATIONSHIP_TYPES)}")
    if source and target and source == target:
        row.fail("target_customer_id", "a customer cannot have a relationship with themself",
                 rule=True)  # fmt: skip
    weight = _weight(row, raw.get("weight"))
    created_at = now
    # Absent (or, in CSV, an empty cell): when received. A JSON null is refused like any.
    given = raw.get("created_at")
    if "created_at" in raw and (row.typed or (isinstance(given, str) and given.strip())):
        created_at = row.timestamp("created_at", now=now) or now
    row.done()
    return RelationshipRecord(source, target, kind, weight, created_at)


def _weight(row: _Row, value: Any) -> float:
    if value is None or (isinstance(value, str) and not row.typed and not value.strip()):
        if value is None and row.typed and "weight" in row.raw:
            row.fail("weight", "expected a number, got null")
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        row.fail("weight", f"expected a number, got {json_type(value)}")
        return 1.0
    if isinstance(value, str):
        if row.typed:
            row.fail("weight", "expected a number, got string")
            return 1.0
        try:
            value = float(value.strip())
        except ValueError:
            row.fail("weight", f"not a number: {value!r}")
            return 1.0
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= MAX_WEIGHT:
        row.fail("weight", f"expected a number > 0 and <= {MAX_WEIGHT:g}, got {value!r}",
                 rule=True)  # fmt: skip
        return 1.0
    return number
