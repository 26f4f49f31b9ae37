"""recommender's models, re-exported so callers write ``from recommender.models import Product``."""

from .activity import (
    ActiveCustomersDaily,
    ActiveCustomersWeekly,
    CustomerActivity,
    CustomerDay,
    CustomerWeek,
    EventDailyCount,
    ProductCountsState,
    ProductEventCount,
)
from .catalog import Product
from .customers import Customer
from .embeddings import ProductEmbedding
from .evaluations import EvaluationRun
from .events import Event
from .index import IndexBuild
from .merchandising import MerchandisingRule, RuleAction, RuleTarget
from .recommendations import (
    EngineBuild,
    RecommendationConfig,
    RecommendationKind,
    RecommendationLog,
)
from .sequential import SequentialBuild

__all__ = [
    "ActiveCustomersDaily",
    "ActiveCustomersWeekly",
    "Customer",
    "CustomerActivity",
    "CustomerDay",
    "CustomerWeek",
    "EngineBuild",
    "EvaluationRun",
    "Event",
    "EventDailyCount",
    "IndexBuild",
    "MerchandisingRule",
    "Product",
    "ProductCountsState",
    "ProductEmbedding",
    "ProductEventCount",
    "RecommendationConfig",
    "RecommendationKind",
    "RecommendationLog",
    "RuleAction",
    "RuleTarget",
    "SequentialBuild",
]
