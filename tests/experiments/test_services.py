"""Experiments against PostgreSQL and the real serving path: validation, states, assignment at
serving time, the log, and the attribution run."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments import selectors, services
from experiments.models import Experiment, ExperimentState, Variant, VisitorStats
from recommender.models import Customer, Event, Product, RecommendationConfig, RecommendationLog
from recommender.services.recommendations import customer_recommendations, session_recommendations
from recommender.services.recommendations.lists import SessionEvent
from tests.experiments.helpers import running, spec, variant_of
from tests.recommender.shop import SHOP_CONFIG

pytestmark = pytest.mark.django_db

CUSTOMERS = [f"C{i}" for i in range(1, 9)]


@pytest.fixture(autouse=True)
def _fresh_experiments():
    services.experiments_running_reset()
    yield
    services.experiments_running_reset()


def _refused(field, message, **overrides):
    with pytest.raises(services.ExperimentError) as caught:
        services.experiment_create(spec=spec(**overrides))
    assert (caught.value.field, caught.value.message) == (field, message)
    assert not Experiment.objects.exists()
    assert not Variant.objects.exists()


# Validation ---------------------------------------------------------------------------------


def test_shares_that_do_not_sum_to_100_are_refused_and_nothing_is_saved():
    _refused(
        "variants",
        "the shares must sum to 100, not 90",
        variants=[services.VariantSpec("a", 50), services.VariantSpec("b", 40)],
    )


def test_a_variant_naming_a_missing_configuration_is_refused():
    _refused(
        "variants[1].config_version",
        "no recommendation configuration has version 7",
        variants=[services.VariantSpec("a", 50), services.VariantSpec("b", 50, config_version=7)],
    )


def test_an_end_before_the_start_is_refused():
    now = timezone.now()
    _refused(
        "ends_at", "the end must come after the start", starts_at=now, ends_at=now - timedelta(1)
    )


def test_one_variant_a_repeated_name_and_a_baseline_with_a_version_are_refused():
    RecommendationConfig.objects.create(version=1, config=SHOP_CONFIG.to_dict(), is_active=True)
    _refused(
        "variants",
        "an experiment needs a control and at least one more",
        variants=[services.VariantSpec("a", 100)],
    )
    _refused(
        "variants[1].name",
        "two variants are named 'a'",
        variants=[services.VariantSpec("a", 50), services.VariantSpec("a", 50)],
    )
    _refused(
        "variants[1].config_version",
        "a baseline serves no configuration version: give one or the other",
        variants=[
            services.VariantSpec("a", 50),
            services.VariantSpec("b", 50, config_version=1, baseline="popularity"),
        ],
    )


def test_unknown_lists_and_unknown_guardrails_are_refused():
    _refused(
        "lists",
        "'win_back' is not a list (expected ['bought_together', 'customer', 'session', "
        "'similar', 'trending'])",
        lists=["win_back"],
    )
    _refused(
        "guardrails[0].metric",
        "expected one of ['add_to_cart_rate', 'conversion', 'coverage', 'ctr', "
        "'revenue_per_mille']",
        guardrails=[{"metric": "latency", "max_drop_pct": 5}],
    )


# States -------------------------------------------------------------------------------------


def test_draft_running_stopped_and_a_running_experiment_keeps_its_variants():
    experiment = services.experiment_create(spec=spec())
    assert experiment.state == ExperimentState.DRAFT

    experiment = services.experiment_start(experiment=experiment)
    with pytest.raises(services.ExperimentError) as caught:
        services.experiment_update(
            experiment=experiment,
            changes={"variants": [services.VariantSpec("x", 50), services.VariantSpec("y", 50)]},
        )
    renamed = services.experiment_update(experiment=experiment, changes={"name": "renamed"})
    stopped = services.experiment_stop(experiment=renamed)

    assert (caught.value.field, caught.value.conflict) == ("variants", True)
    assert caught.value.message == (
        "a running experiment's variants cannot change: only its name, description and end "
        "can; stop it and copy it to change the rest"
    )
    assert [v.name for v in stopped.variants.all()] == ["control", "treatment"]
    assert (renamed.name, stopped.state) == ("renamed", ExperimentState.STOPPED)
    assert stopped.started_at is not None
    assert stopped.stopped_at is not None


def test_two_running_experiments_cannot_claim_the_same_list():
    first = running(name="first", lists=["customer", "session"])
    second = services.experiment_create(spec=spec(name="second", lists=["session"]))

    with pytest.raises(services.ExperimentError) as caught:
        services.experiment_start(experiment=second)
    third = services.experiment_start(
        experiment=services.experiment_copy(experiment=services.experiment_stop(experiment=first))
    )

    assert (caught.value.field, caught.value.conflict) == ("lists", True)
    assert caught.value.message == "'first' already runs on session lists; stop it first"
    assert (third.name, third.state, third.copied_from_id) == (
        "first (copy)", ExperimentState.RUNNING, first.pk,
    )  # fmt: skip
    assert third.salt != first.salt


# Serving ------------------------------------------------------------------------------------


def test_each_customer_gets_their_variant_and_the_log_records_it(shop):
    experiment = running()

    results = {c: customer_recommendations(customer=Customer.objects.get(external_id=c), k=3)
               for c in CUSTOMERS}  # fmt: skip

    expected = {c: variant_of(f"c:{c}") for c in CUSTOMERS}
    assert set(expected.values()) == {"control", "treatment"}  # Both arms are exercised.
    for c, result in results.items():
        assert (result.experiment, result.variant) == (experiment.pk, expected[c])
        # The "no recommendations" baseline serves an empty list; the control serves 3.
        assert len(result.items) == (0 if expected[c] == "treatment" else 3)
    logged = {
        customer: (experiment_id, variant)
        for customer, experiment_id, variant in RecommendationLog.objects.values_list(
            "customer__external_id", "experiment_id", "variant"
        )
    }
    assert logged == {c: (experiment.pk, expected[c]) for c in CUSTOMERS}


def test_assignment_is_sticky_across_requests(shop):
    running()
    customer = Customer.objects.get(external_id="C4")

    variants = {customer_recommendations(customer=customer, k=3).variant for _ in range(5)}

    assert variants == {variant_of("c:C4")}


def test_a_variant_serves_its_configuration_version(shop):
    other = SHOP_CONFIG.to_dict() | {"mmr_lambda": 0.5}
    RecommendationConfig.objects.create(version=2, config=other, is_active=False)
    running(
        variants=[
            services.VariantSpec("control", 50),
            services.VariantSpec("treatment", 50, config_version=2),
        ]
    )

    versions = {
        c: customer_recommendations(customer=Customer.objects.get(external_id=c), k=3)
        for c in CUSTOMERS
    }

    for c, result in versions.items():
        assert result.config_version == (2 if variant_of(f"c:{c}") == "treatment" else 1)
    assert {log.config_version for log in RecommendationLog.objects.all()} == {1, 2}


def test_the_popularity_baseline_serves_the_popularity_source_alone(shop):
    running(
        variants=[
            services.VariantSpec("control", 50),
            services.VariantSpec("treatment", 50, baseline="popularity"),
        ]
    )
    treated = next(c for c in CUSTOMERS if variant_of(f"c:{c}") == "treatment")

    result = customer_recommendations(customer=Customer.objects.get(external_id=treated), k=3)

    assert len(result.items) == 3
    assert {source for item in result.items for source in item.sources} == {"popularity"}


def test_a_session_is_assigned_by_its_session_id(shop):
    experiment = running(lists=["session"])
    ink = Product.objects.get(external_id="INK-1")
    sessions = [f"S{i}" for i in range(10)]

    results = {
        s: session_recommendations(events=[SessionEvent(product=ink)], k=3, session_id=s)
        for s in sessions
    }
    anonymous = session_recommendations(events=[SessionEvent(product=ink)], k=3)

    for s, result in results.items():
        assert (result.experiment, result.variant) == (experiment.pk, variant_of(f"s:{s}"))
    assert (anonymous.experiment, anonymous.variant) == (None, None)
    assert RecommendationLog.objects.filter(session_id="S3").get().variant == variant_of("s:S3")


def test_a_stopped_or_ended_experiment_serves_no_one(shop):
    experiment = running()
    customer = Customer.objects.get(external_id="C1")
    services.experiment_stop(experiment=experiment)
    after_stop = customer_recommendations(customer=customer, k=3)
    ended = running(name="ended", ends_at=timezone.now() - timedelta(seconds=1),
                    starts_at=timezone.now() - timedelta(hours=1))  # fmt: skip

    after_end = customer_recommendations(customer=customer, k=3)

    assert ended.state == ExperimentState.RUNNING
    assert (after_stop.experiment, after_end.experiment) == (None, None)


def test_serving_an_experiment_writes_nothing_but_the_log_row(shop, settings):
    settings.RECSITE_EXPERIMENTS_REFRESH_SECONDS = 60
    running()
    customer = Customer.objects.get(external_id="C1")
    customer_recommendations(customer=customer, k=3)  # Loads the running experiments once.

    with CaptureQueriesContext(connection) as queries:
        result = customer_recommendations(customer=customer, k=3)

    sql = [q["sql"] for q in queries.captured_queries]
    assert result.variant == variant_of("c:C1")
    assert not [q for q in sql if "experiments_" in q]
    writes = [q for q in sql if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1
    assert "recommender_recommendationlog" in writes[0]


# Attribution --------------------------------------------------------------------------------


def _event(customer, product, event_type, at, *, rid=None, value=None, n=[0]):  # noqa: B006
    n[0] += 1
    return Event.objects.create(
        event_id=f"x-{n[0]}-{uuid.uuid4()}",
        customer=Customer.objects.get(external_id=customer),
        product=Product.objects.get(external_id=product),
        event_type=event_type,
        occurred_at=at,
        value=value,
        recommendation_id=rid,
    )


def test_the_attribution_run_counts_both_rules_exactly(shop):
    experiment = running(variants=[services.VariantSpec("control", 50),
                                   services.VariantSpec("treatment", 50)])  # fmt: skip
    lists = {
        c: customer_recommendations(customer=Customer.objects.get(external_id=c), k=3)
        for c in ("C1", "C2", "C3", "C4")
    }
    now = timezone.now()
    c1, c2, c3 = (lists[c] for c in ("C1", "C2", "C3"))
    first = lambda c: lists[c].items[0].product.external_id  # noqa: E731
    # C1 clicks its first product, sending the list's id (explicit).
    _event("C1", first("C1"), "click", now + timedelta(minutes=1), rid=c1.recommendation_id)
    # C2 buys its second product within 7 days, without an id (last touch), for 12.50.
    _event("C2", c2.items[1].product.external_id, "purchase", now + timedelta(days=2),
           value=Decimal("12.50"))  # fmt: skip
    # C3 clicks its first product 25 hours later: outside the click window, for no one.
    _event("C3", first("C3"), "click", now + timedelta(hours=25))
    # C4 sends an id no list has: stored, attributed to no one, counted as unknown.
    unknown = uuid.uuid4()
    _event("C4", first("C4"), "click", now + timedelta(minutes=1), rid=unknown)
    # A view is not counted.
    _event("C1", first("C1"), "view", now + timedelta(minutes=1))

    counts = services.experiment_results_refresh(
        experiment=experiment, now=now + timedelta(days=10)
    )

    assert counts == {
        "explicit": 1, "window": 1, "unattributed": 2, "unknown_ids": 1, "lists": 4,
        "visitors": 4,
    }  # fmt: skip
    stats = {
        s.visitor: (s.variant, s.impressions, s.filled, s.clicks, s.carts, s.purchases, s.revenue)
        for s in VisitorStats.objects.filter(experiment=experiment)
    }
    v = {c: variant_of(f"c:{c}") for c in ("C1", "C2", "C3", "C4")}
    assert stats == {
        "c:C1": (v["C1"], 1, 1, 1, 0, 0, Decimal("0.00")),
        "c:C2": (v["C2"], 1, 1, 0, 0, 1, Decimal("12.50")),
        "c:C3": (v["C3"], 1, 1, 0, 0, 0, Decimal("0.00")),
        "c:C4": (v["C4"], 1, 1, 0, 0, 0, Decimal("0.00")),
    }
    assert Event.objects.get(recommendation_id=unknown).customer.external_id == "C4"
    # The results read the aggregates: per variant, visitors and clicks add up.
    results = selectors.experiment_results(experiment=experiment)
    by_name = {r.name: r for r in results.variants}
    for name in ("control", "treatment"):
        mine = [c for c in v if v[c] == name]
        assert by_name[name].visitors == len(mine)
        assert by_name[name].clicks == sum(1 for c in mine if c == "C1")
        assert by_name[name].revenue == (12.5 if "C2" in mine else 0.0)


def test_rerunning_the_attribution_replaces_the_aggregates(shop):
    experiment = running()
    for c in CUSTOMERS:
        customer_recommendations(customer=Customer.objects.get(external_id=c), k=3)

    services.experiment_results_refresh(experiment=experiment)
    services.experiment_results_refresh(experiment=experiment)

    assert VisitorStats.objects.filter(experiment=experiment).count() == 8
    assert sum(s.impressions for s in VisitorStats.objects.filter(experiment=experiment)) == 8


def test_forgetting_a_customer_deletes_their_visitor_totals_and_the_export_lists_them(
    admin_client_api,
):
    from decimal import Decimal

    from recommender.models import Customer
    from recommender.services.ingestion import customer_forget

    # given: per-visitor totals of two customers in one experiment
    experiment = running()
    for name in ("A", "B"):
        Customer.objects.create(external_id=name)
        VisitorStats.objects.create(
            experiment=experiment, variant="control", visitor=f"c:{name}", impressions=3,
            filled=3, clicks=1, carts=0, purchases=0, revenue=Decimal("0.00"),
        )  # fmt: skip

    # then: A's export lists theirs
    exported = admin_client_api.get("/api/v1/customers/A/export").json()["experiments"]
    assert exported == [
        {"experiment": experiment.pk, "variant": "control", "impressions": 3, "clicks": 1,
         "carts": 0, "purchases": 0, "revenue": "0.00"},
    ]  # fmt: skip

    # when: A is forgotten
    customer_forget(customer=Customer.objects.get(external_id="A"))

    # then: only B's totals are left
    assert list(VisitorStats.objects.values_list("visitor", flat=True)) == ["c:B"]
