"""Reads behind the recommendation engine: a customer's recent events, builds, configurations."""

from datetime import datetime

from recommender.choices import BuildStatus
from recommender.models import Customer, EngineBuild, Event, RecommendationConfig, RecommendationLog

# Events of a customer read per request: enough for the interest vectors and the collaborative
# history, bounded so a customer with years of events costs the same as any other.
HISTORY_LIMIT = 200


def customer_recent_events(
    *, customer: Customer, limit: int = HISTORY_LIMIT
) -> list[tuple[int | None, str, datetime, str]]:
    """``(product_id, event_type, occurred_at, search_query)`` of the newest events, newest first.

    Ordered by ``-occurred_at`` alone, so PostgreSQL reads the ``(customer, -occurred_at)``
    index backwards and stops after ``limit`` rows (a tie-breaker column would force a sort).
    """
    rows = (
        Event.objects.filter(customer=customer)
        .order_by("-occurred_at")
        .values_list("product_id", "event_type", "occurred_at", "search_query")[:limit]
    )
    return list(rows)


def engine_build_latest_ready(*, model_name: str | None = None) -> EngineBuild | None:
    builds = EngineBuild.objects.filter(status=BuildStatus.READY)
    if model_name is not None:
        builds = builds.filter(model_name=model_name)
    return builds.order_by("-finished_at", "-pk").first()


def recommendation_config_list() -> list[RecommendationConfig]:
    return list(RecommendationConfig.objects.select_related("created_by").order_by("-version"))


def recommendation_log_get(*, recommendation_id: str) -> RecommendationLog | None:
    return RecommendationLog.objects.filter(recommendation_id=recommendation_id).first()
