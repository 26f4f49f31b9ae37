"""Deterministic, sticky assignment of visitors to variants.

A visitor's bucket is a hash of the experiment's salt and the visitor key (``c:<customer id>``
or ``s:<session id>``): the same visitor always lands in the same variant of an experiment,
nothing is written per request, and two experiments (different salts) assign independently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

# Buckets of the hash: shares are whole percents, so each percent is 100 buckets.
BUCKETS = 10_000


def bucket(salt: str, visitor: str) -> int:
    """The visitor's bucket in ``[0, BUCKETS)``: the first 8 bytes of SHA-256 of
    ``salt:visitor``, modulo ``BUCKETS`` (a bias below 1e-15)."""
    digest = hashlib.sha256(f"{salt}:{visitor}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(salt: str, visitor: str, shares: Sequence[int]) -> int:
    """The index of the variant serving ``visitor``: variant i takes ``shares[i]`` percent of
    the buckets, in order (shares sum to 100)."""
    point = bucket(salt, visitor)
    edge = 0
    for index, share in enumerate(shares):
        edge += share * (BUCKETS // 100)
        if point < edge:
            return index
    raise ValueError(f"shares must sum to 100, got {sum(shares)}")
