"""Recommendations: the versioned configuration, fitted engine builds, and request-time lists.

This package's public names, re-exported from the modules that own them (about forty callers
across the apps, the tests and the benchmarks use them as one service):

- ``versions``: configuration versions (the active one, save, restore);
- ``fitting``: fitting and publishing engine builds;
- ``serving``: the serving cache (the engine this process serves);
- ``logged``: the result types and the recommendation log write;
- ``lists``: request-time lists of a customer and of a session;
- ``product_lists``: request-time product lists (similar, bought together, trending);
- ``rotation``: the demotion of what a visitor was shown repeatedly (used by both).

A saved configuration version serves at once (within ``RECSITE_INDEX_REFRESH_SECONDS``): its
request-time fields (blend and behaviour weights, half-life, diversity, exclusions) are applied to
the fitted engine without a refit, and the log records that version. Its fit-time fields (EASE,
kNN, popularity and co-occurrence settings) take effect at the next fit (docs/tuning.md).
"""

from .fitting import ENGINE_KIND, engine_build, engine_builds_prune
from .lists import SessionEvent, customer_recommendations, session_recommendations
from .logged import Recommendations, RecommendedProduct
from .product_lists import SimilarMode, bought_together, similar_products, trending_products
from .serving import (
    EngineNotReady,
    ServingEngine,
    serving_ann,
    serving_engine,
    serving_engine_recheck,
    serving_engine_reset,
)
from .versions import (
    ConfigChanged,
    engine_config_active,
    recommendation_config_active,
    recommendation_config_restore,
    recommendation_config_save,
    recommendation_config_untuned,
)

__all__ = [
    "ENGINE_KIND",
    "ConfigChanged",
    "EngineNotReady",
    "Recommendations",
    "RecommendedProduct",
    "ServingEngine",
    "SessionEvent",
    "SimilarMode",
    "bought_together",
    "customer_recommendations",
    "engine_build",
    "engine_builds_prune",
    "engine_config_active",
    "recommendation_config_active",
    "recommendation_config_restore",
    "recommendation_config_save",
    "recommendation_config_untuned",
    "serving_ann",
    "serving_engine",
    "serving_engine_recheck",
    "serving_engine_reset",
    "session_recommendations",
    "similar_products",
    "trending_products",
]
