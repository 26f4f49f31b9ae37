from tests.churn.shop import churn_settings, churn_shop
from tests.recommender.shop import fresh_serving

__all__ = ["churn_settings", "churn_shop", "fresh_serving"]
