"""The key that names a customer in forget requests and audit entries without their id.

``customer_key(id)`` is an HMAC-SHA256 of the shop's customer id under a key derived from
``RECSITE_PRIVACY_KEY`` (default: derived from ``DJANGO_SECRET_KEY``), so a dump of the audit
log or the tombstones reveals no customer id, while ``privacy_check ID`` finds the requests
about an id by hashing it the same way. It is not the pseudonymous id of the API boundary: a
different purpose, a different key.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def _key() -> bytes:
    secret = settings.RECSITE_PRIVACY_KEY or settings.SECRET_KEY
    return hashlib.sha256(b"recsite-privacy-tombstone\x00" + secret.encode()).digest()


def customer_key(external_id: str) -> str:
    return hmac.new(_key(), external_id.encode(), hashlib.sha256).hexdigest()


def shop_customer_key(shop_id: str) -> str:
    """The key of the customer a shop's id names now (hashed first with pseudonymous ids)."""
    from recommender.pseudonyms import customer_id_stored

    return customer_key(customer_id_stored(shop_id))


def shop_customer_keys(shop_id: str) -> list[str]:
    """Every key a request about this shop id may have been recorded under: the id as sent,
    and its pseudonym under each key chain it was stored under (``rotate_id_key`` extends it)."""
    from recommender.pseudonyms import PREFIX, hash_step, id_keys, pseudonymous_ids

    keys = [customer_key(shop_id)]
    if pseudonymous_ids():
        value = shop_id
        for key in id_keys():
            value = hash_step(value, key)
            keys.append(customer_key(PREFIX + value))
    return keys
