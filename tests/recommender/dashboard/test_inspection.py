"""HybridEngine.explain and the inspection service behind the customer inspector."""

import pytest

from recommender.models import Customer, Product, RecommendationLog
from recommender.selectors.recommendations import customer_recent_events
from recommender.services.inspection import customer_inspection, product_similar_lists
from recommender.services.recommendations import serving_engine
from recommender.services.recommendations.lists import _history

pytestmark = pytest.mark.django_db


def test_explain_scores_are_the_parts_of_the_served_scores(shop):
    # given the fitted shop engine and C2's history
    serving = serving_engine()
    customer = Customer.objects.get(external_id="C2")
    history, now = _history(serving, customer_recent_events(customer=customer))

    # when the engine explains it and recommends for it
    explanation = serving.engine.explain(history, now=now, per_source=50)
    served = serving.engine.recommend(history, k=10, now=now)

    # then each source's weighted score of a served product is that product's component
    by_source = {
        source: {c.product_id: c for c in rows} for source, rows in explanation.sources.items()
    }
    for rank, item in enumerate(served, start=1):
        for source, part in item.components.items():
            candidate = by_source[source][item.product_id]
            assert candidate.weighted == pytest.approx(part, abs=1e-12)
            assert candidate.fused == pytest.approx(item.score, abs=1e-12)
            assert candidate.fused_rank == rank
    # and the bought inks are excluded, weighted equally (one day, one type)
    inks = set(Product.objects.filter(category="Office").values_list("pk", flat=True))
    assert set(explanation.excluded) == inks
    assert {pid for pid, _ in explanation.history_weights} == inks
    assert len({round(w, 12) for _, w in explanation.history_weights}) == 1
    assert [name for name, _ in explanation.category_weights] == ["Office"]
    assert explanation.weights == {
        "semantic": 1.0, "collaborative": 1.0, "popularity": 0.2, "trending": 0.1,
        "new_arrivals": 0.05, "session": 1.0,
    }  # fmt: skip


def test_explain_a_cold_history_uses_the_non_personal_sources(shop):
    from recommender.ml.engine import History

    serving = serving_engine()

    explanation = serving.engine.explain(History(), now=serving.fitted_at)

    # The personal sources are off (only weights > 0 are listed); new arrivals have no
    # candidate in a shop whose products all have events.
    assert set(explanation.weights) == {"popularity", "trending", "new_arrivals", "session"}
    assert set(explanation.sources) == {"popularity", "trending"}
    assert explanation.history_weights == ()
    assert explanation.interests == ()


def test_inspection_of_a_customer_writes_no_recommendation_log(shop):
    customer = Customer.objects.get(external_id="C4")

    inspection = customer_inspection(customer=customer, k=5)
    similar = product_similar_lists(product=Product.objects.get(external_id="MUG-1"), k=5)

    assert inspection.ready is True
    assert len(inspection.final) == 5
    assert {p.external_id for p in inspection.excluded} == {"MUG-1", "COF-1"}
    # Equal weights (one basket): in catalogue order.
    assert [p.external_id for p, _ in inspection.top_products] == ["MUG-1", "COF-1"]
    assert similar.behavioural is not None
    assert RecommendationLog.objects.count() == 0


def test_inspection_without_an_engine_is_a_message(fresh_serving):
    customer = Customer.objects.create(external_id="C1")

    inspection = customer_inspection(customer=customer)

    assert inspection.ready is False
    assert inspection.message.startswith("No recommendation engine has been fitted yet")
