"""Training, scoring and win-back lists on a synthetic shop (tests/churn/shop.py)."""

from datetime import timedelta

import pytest

from churn import selectors, services
from churn.ml.model import NotEnoughHistory
from churn.models import ChurnModelBuild, ChurnScore, RiskBand
from recommender.models import Customer, Event, Product
from recommender.services import recommendations as recommendation_service
from recommender.services.merchandising import merchandising_rule_create
from tests.churn.shop import AS_OF, HORIZON

pytestmark = pytest.mark.django_db


def _rows():
    return list(
        ChurnScore.objects.order_by("customer_id").values_list(
            "pk", "customer_id", "score", "band", "model_version", "as_of", "drivers"
        )
    )


def test_churn_clock_is_midnight_after_the_newest_event(churn_shop):
    assert services.churn_clock() == AS_OF - timedelta(days=1)  # ACTIVE's last day is 238


def test_training_stores_artifact_and_a_backtest_against_both_baselines(churn_shop):
    build = services.churn_model_train(as_of=AS_OF)

    assert ChurnModelBuild.objects.count() == 1
    assert build.horizon_days == HORIZON
    assert build.version.startswith("churn-20240828-h30-")
    backtest = build.metrics["backtest"]
    assert set(backtest["methods"]) == {"model", "bgnbd", "rfm_logreg"}
    assert backtest["cutoff"] == (AS_OF - timedelta(days=HORIZON)).isoformat()
    # Training again on the same data gives the same version and keeps one row.
    assert services.churn_model_train(as_of=AS_OF).pk == build.pk


def test_a_customer_who_stopped_buying_scores_higher_than_an_active_one(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)

    stopped = selectors.churn_score_latest(customer=churn_shop["STOPPED"])
    active = selectors.churn_score_latest(customer=churn_shop["ACTIVE"])
    assert stopped is not None
    assert active is not None
    assert stopped.score > active.score
    assert (stopped.band, active.band) == (RiskBand.HIGH, RiskBand.LOW)
    # The stopped customer's first driver is about how long ago they last bought.
    assert stopped.drivers[0]["feature"] in {
        "recency_days", "recency_share", "overdue", "purchases_30d", "purchases_90d",
        "bgnbd_p_alive", "bgnbd_expected", "activity_recency_days",
    }  # fmt: skip
    assert stopped.drivers[0]["effect"] > active.drivers[0]["effect"]


def test_scoring_twice_gives_the_same_rows(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    first = services.churn_scores_refresh(as_of=AS_OF)
    rows = _rows()

    second = services.churn_scores_refresh(as_of=AS_OF)

    assert _rows() == rows
    assert len(rows) == first.customers == second.customers == 162
    assert first.bands == second.bands


def test_an_event_after_as_of_cannot_change_a_score_as_of_it(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)
    rows = _rows()

    # Given the stopped customer buys again after AS_OF, and a new customer appears
    stopped = churn_shop["STOPPED"]
    product = Product.objects.first()
    newcomer = Customer.objects.create(external_id="NEW")
    for i, customer in enumerate((stopped, newcomer)):
        Event.objects.create(
            event_id=f"late-{i}", customer=customer, product=product, event_type="purchase",
            occurred_at=AS_OF + timedelta(hours=1), quantity=5, value=10,
        )  # fmt: skip

    # When scored again as of AS_OF with the same model
    services.churn_scores_refresh(as_of=AS_OF)

    # Then nothing changed
    assert _rows() == rows


def test_scoring_without_a_model_is_refused(churn_shop):
    with pytest.raises(NotEnoughHistory, match="no churn model"):
        services.churn_scores_refresh(as_of=AS_OF)


def test_at_risk_list_is_the_latest_run_riskiest_first(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF - timedelta(days=7))
    services.churn_scores_refresh(as_of=AS_OF)

    high = selectors.churn_at_risk_list(band=RiskBand.HIGH, limit=500)
    run = selectors.churn_run_latest()
    assert run is not None

    assert run.as_of == AS_OF
    assert {s.as_of for s in high} == {AS_OF}
    assert [s.score for s in high] == sorted((s.score for s in high), reverse=True)
    assert len(high) == ChurnScore.objects.filter(as_of=AS_OF, band=RiskBand.HIGH).count()
    history = selectors.churn_distribution_history()
    assert [h.as_of for h in history] == [AS_OF - timedelta(days=7), AS_OF]


def test_win_back_interleaves_repurchase_candidates_and_recommendations(churn_shop, fresh_serving):
    # Given a fitted recommendation engine and a scored customer who bought tea every week
    recommendation_service.engine_build()
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)

    result = services.winback_list(customer=churn_shop["STOPPED"], k=4)

    # Then repurchase candidates and recommendations alternate, each with a reason
    assert [item.source for item in result.items] == [
        "repurchase", "recommendation", "repurchase", "recommendation",
    ]  # fmt: skip
    # All three products are overdue; the least overdue comes first: the pot (every 14 days,
    # last 93 days ago), before the mug (14, 100) and the tea (every 7 days, 93 days ago).
    assert result.items[0].product.external_id == "POT-1"
    assert result.items[0].reason == "Bought 11 times, about every 14 days; last bought 93 days ago"
    assert all(item.reason for item in result.items)
    assert len({item.product.pk for item in result.items}) == 4
    assert result.recommendation_id is not None


def test_win_back_without_an_engine_lists_repurchases_and_says_why(churn_shop, fresh_serving):
    result = services.winback_list(customer=churn_shop["STOPPED"], k=10)
    assert [item.product.external_id for item in result.items] == ["POT-1", "MUG-1", "TEA-1"]
    assert result.note == "No recommendation engine is fitted yet: repurchase candidates only."


def test_win_back_hides_repurchase_candidates_a_customer_list_filter_removes(
    churn_shop, fresh_serving
):
    merchandising_rule_create(
        data={"name": "No pots", "action": "filter", "target_kind": "product",
              "target_values": ["POT-1"]}
    )  # fmt: skip
    merchandising_rule_create(
        data={"name": "Similar only", "action": "filter", "target_kind": "product",
              "target_values": ["TEA-1"], "surfaces": ["similar"]}
    )  # fmt: skip

    result = services.winback_list(customer=churn_shop["STOPPED"], k=10)

    # The filter on every list hides the pot; the one on similar lists leaves the tea.
    assert [item.product.external_id for item in result.items] == ["MUG-1", "TEA-1"]
