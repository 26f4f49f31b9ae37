"""recommender's models, re-exported so callers write ``from recommender.models import Product``."""

from .catalog import Product
from .customers import Customer
from .embeddings import ProductEmbedding
from .evaluations import EvaluationRun
from .events import Event
from .index import IndexBuild
from .jobs import Job
from .merchandising import MerchandisingRule, RuleAction, RuleTarget
from .recommendations import (
    EngineBuild,
    RecommendationConfig,
    RecommendationKind,
    RecommendationLog,
)

__all__ = [
    "Customer",
    "EngineBuild",
    "EvaluationRun",
    "Event",
    "IndexBuild",
    "Job",
    "MerchandisingRule",
    "Product",
    "ProductEmbedding",
    "RecommendationConfig",
    "RecommendationKind",
    "RecommendationLog",
    "RuleAction",
    "RuleTarget",
]
