"""Path ids of the API that every app shares: one 404 text per kind of record. Imports no app
(the jobs app's API uses it); the catalogue's lookups are in :mod:`recsite.api.catalog`."""

from rest_framework.exceptions import NotFound

# Primary keys are 64-bit; a larger number in a path names no record (and must not reach the
# database, which would refuse the comparison).
MAX_PK = 2**63 - 1


def int_or_404(pk: int, noun: str) -> int:
    """``pk`` when a record could have it; otherwise 404 "<noun> <pk> not found."."""
    if not 1 <= pk <= MAX_PK:
        raise NotFound(f"{noun} {pk} not found.")
    return pk
