"""Pseudonymous customer ids: with ``RECSITE_PSEUDONYMOUS_IDS=1`` the shop's customer ids are
stored as a keyed hash, so a database dump reveals none of them.

Every door hashes the same way: the batch API and every importer when they create or resolve
customers (``recommender.services.ingestion``), and every lookup by id (``customer_get``, which
the API paths, the dashboard and the event filter use). The stored id is ``p_`` + HMAC-SHA256
under the keys of ``RECSITE_ID_KEY`` (comma-separated, oldest first), chained: with keys k1, k2
it is ``HMAC(k2, HMAC(k1, id))``. So rotating the key (``manage.py rotate_id_key``) hashes the
stored ids once more under a new key, without knowing the shop's ids, and appends the key to
the chain; a leaked old key alone links nothing.

Off (the default), ids are stored as sent. Answers show the stored id (the hash) where they
show a customer id read from the database; answers that echo the request show the shop's id.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "p_"


def pseudonymous_ids() -> bool:
    return bool(settings.RECSITE_PSEUDONYMOUS_IDS)


def id_keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in settings.RECSITE_ID_KEY.split(",") if k.strip())
    if not keys:
        raise ImproperlyConfigured(
            "RECSITE_ID_KEY: RECSITE_PSEUDONYMOUS_IDS=1 needs a secret key (docs/privacy.md)"
        )
    return keys


def hash_step(value: str, key: str) -> str:
    """One link of the chain: the hex HMAC-SHA256 of ``value`` under ``key``."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=200_000)
def _stored(external_id: str, keys: tuple[str, ...]) -> str:
    value = external_id
    for key in keys:
        value = hash_step(value, key)
    return PREFIX + value


def customer_id_stored(external_id: str) -> str:
    """The id a customer is stored under: the shop's id, or its pseudonym when enabled."""
    if not pseudonymous_ids():
        return external_id
    return _stored(external_id, id_keys())


def customer_id_rotated(stored: str, new_key: str) -> str:
    """A stored pseudonym under one more key (``rotate_id_key``)."""
    return PREFIX + hash_step(stored.removeprefix(PREFIX), new_key)


def customer_id_lookups(external_id: str) -> list[str]:
    """The stored ids a lookup by ``external_id`` may match: the shop's id hashed, and, with
    pseudonymous ids, the value itself when it is a pseudonym already (the dashboard's links and
    the API's answers name customers by their stored id)."""
    stored = customer_id_stored(external_id)
    if stored != external_id and external_id.startswith(PREFIX) and len(external_id) == 66:
        return [stored, external_id]
    return [stored]
