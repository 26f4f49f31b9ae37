from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]
