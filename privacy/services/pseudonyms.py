"""Rotating the key of pseudonymous customer ids (:mod:`recommender.pseudonyms`)."""

from __future__ import annotations

from django.db import transaction

from recommender.models import Customer
from recommender.pseudonyms import PREFIX, customer_id_rotated, id_keys, pseudonymous_ids
from recommender.services.activity import events_lock_exclusive

from .audit import audit_record

_CHUNK = 5_000


@transaction.atomic
def id_key_rotate(*, new_key: str) -> tuple[int, str]:
    """Hash every stored pseudonym once more under ``new_key``; returns (customers, the new
    RECSITE_ID_KEY chain). Ingestion waits meanwhile (the events lock, exclusively)."""
    if not pseudonymous_ids():
        raise ValueError("RECSITE_PSEUDONYMOUS_IDS is off: there is no pseudonym to rotate")
    keys = id_keys()
    events_lock_exclusive()
    plain = Customer.objects.exclude(external_id__startswith=PREFIX).count()
    if plain:
        raise ValueError(
            f"{plain} customers are stored under the shop's ids (from before pseudonymous ids "
            "were on); rotation would leave them as they are: forget or re-import them first"
        )
    rotated = 0
    last = 0
    while True:
        chunk = list(Customer.objects.filter(pk__gt=last).order_by("pk")[:_CHUNK])
        if not chunk:
            break
        for customer in chunk:
            customer.external_id = customer_id_rotated(customer.external_id, new_key)
        Customer.objects.bulk_update(chunk, ["external_id"])
        rotated += len(chunk)
        last = chunk[-1].pk
    audit_record(action="id_key.rotate", target="customers", detail={"customers": rotated,
                 "keys": len(keys) + 1})  # fmt: skip
    return rotated, ",".join([*keys, new_key])
