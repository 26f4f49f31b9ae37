"""The customer lookup every served list starts with (a raw query): the same instance the ORM
would build, fields converted, None for an unknown id, and pseudonymous ids hashed first."""

from datetime import datetime

import pytest

from recommender.models import Customer
from recommender.selectors.catalog import customer_get


@pytest.mark.django_db
def test_the_customer_is_read_with_its_fields_converted():
    made = Customer.objects.create(external_id="C-7", attributes={"country": "Italy", "vip": True})
    Customer.objects.create(external_id="C-70")

    found = customer_get(external_id="C-7")

    assert found is not None
    assert found.pk == made.pk
    assert found.external_id == "C-7"
    assert found.attributes == {"country": "Italy", "vip": True}
    assert isinstance(found.created_at, datetime)
    assert found.created_at == made.created_at
    assert found.updated_at == made.updated_at
    assert customer_get(external_id="C-") is None
    assert customer_get(external_id="nobody") is None


@pytest.mark.django_db
def test_with_pseudonymous_ids_the_lookup_hashes_the_shops_id(pseudonym_of_c9):
    stored = pseudonym_of_c9
    assert stored != "C-9"
    made = Customer.objects.create(external_id=stored)

    found = customer_get(external_id="C-9")

    assert found is not None
    assert found.pk == made.pk
    # the dashboard's links name customers by their stored pseudonym: that finds them too
    by_pseudonym = customer_get(external_id=stored)
    assert by_pseudonym is not None
    assert by_pseudonym.pk == made.pk
    assert Customer.objects.filter(external_id="C-9").count() == 0
