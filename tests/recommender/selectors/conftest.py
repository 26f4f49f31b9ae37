import pytest

from recommender.pseudonyms import customer_id_lookups


@pytest.fixture
def pseudonym_of_c9(settings):
    """Pseudonymous customer ids on, and the id customer "C-9" is stored under."""
    settings.RECSITE_PSEUDONYMOUS_IDS = True
    settings.RECSITE_ID_KEY = "a-test-key-of-enough-length-0123456789"
    return customer_id_lookups("C-9")[0]
