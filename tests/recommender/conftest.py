"""Fixtures shared by the recommendation tests of the services and the API."""

from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]
