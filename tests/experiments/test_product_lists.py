"""Experiments on similar, bought-together and trending lists (their requests may name a visitor),
and rotation as what a variant's configuration version changes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import services
from experiments.models import VisitorStats
from recommender.models import Customer, Product, RecommendationConfig, RecommendationLog
from recommender.services.recommendations import (
    bought_together,
    customer_recommendations,
    serving_engine,
    similar_products,
    trending_products,
)
from tests.experiments.helpers import running, variant_of
from tests.recommender.shop import SHOP_CONFIG, add_event

pytestmark = pytest.mark.django_db

CUSTOMERS = [f"C{i}" for i in range(1, 9)]
SESSIONS = [f"S{i}" for i in range(10)]
PRODUCT_LISTS = ["similar", "bought_together", "trending"]


@pytest.fixture(autouse=True)
def _fresh_experiments():
    services.experiments_running_reset()
    yield
    services.experiments_running_reset()


def ink():
    return Product.objects.get(external_id="INK-1")


SERVE = {
    "similar": lambda **kw: similar_products(product=ink(), mode="hybrid", **kw),
    "bought_together": lambda **kw: bought_together(product=ink(), **kw),
    "trending": lambda **kw: trending_products(**kw),
}


@pytest.mark.parametrize("kind", PRODUCT_LISTS)
def test_a_product_list_naming_a_visitor_serves_their_variant_and_logs_it(shop, kind):
    experiment = running(lists=[kind])
    customers = {c: Customer.objects.get(external_id=c) for c in CUSTOMERS}

    by_customer = {c: SERVE[kind](k=2, customer=customers[c]) for c in CUSTOMERS}
    by_session = {s: SERVE[kind](k=2, session_id=s) for s in SESSIONS}
    # Both named: the customer is the visitor.
    both = SERVE[kind](k=2, customer=customers["C1"], session_id="S1")
    nobody = SERVE[kind](k=2)

    expected = {c: variant_of(f"c:{c}") for c in CUSTOMERS}
    assert set(expected.values()) == {"control", "treatment"}
    for c, result in by_customer.items():
        assert (result.experiment, result.variant) == (experiment.pk, expected[c])
        # The treatment is the "no recommendations" baseline.
        assert len(result.items) == (0 if expected[c] == "treatment" else 2)
    for s, result in by_session.items():
        assert (result.experiment, result.variant) == (experiment.pk, variant_of(f"s:{s}"))
    assert (both.experiment, both.variant) == (experiment.pk, expected["C1"])
    # Without a visitor: the control's list, in no experiment.
    assert (nobody.experiment, nobody.variant, len(nobody.items)) == (None, None, 2)
    logged = RecommendationLog.objects.filter(kind=kind)
    assert logged.filter(experiment_id=experiment.pk).count() == len(CUSTOMERS) + len(SESSIONS) + 1
    assert logged.filter(experiment_id=None).get().recommendation_id == nobody.recommendation_id
    assert logged.get(customer__external_id="C3").variant == expected["C3"]
    assert logged.get(session_id="S4", customer=None).variant == variant_of("s:S4")


def test_an_experiment_on_customer_lists_leaves_product_lists_alone(shop):
    running(lists=["customer"])

    result = similar_products(product=ink(), k=2, customer=Customer.objects.get(external_id="C1"))

    assert (result.experiment, result.variant, len(result.items)) == (None, None, 2)


@pytest.mark.parametrize("kind", PRODUCT_LISTS)
def test_the_popularity_baseline_of_a_product_list_serves_the_best_sellers(shop, kind):
    running(
        lists=[kind],
        variants=[
            services.VariantSpec("control", 50),
            services.VariantSpec("treatment", 50, baseline="popularity"),
        ],
    )
    treated = next(s for s in SESSIONS if variant_of(f"s:{s}") == "treatment")
    engine = serving_engine().engine
    # The list is about INK-1 except for trending lists: it is not among its own.
    best_sellers = [
        item.product_id
        for item in engine.popular(k=8)
        if kind == "trending" or item.product_id != ink().pk
    ]

    result = SERVE[kind](k=4, session_id=treated)

    assert [item.product.pk for item in result.items] == best_sellers[:4]
    assert {source for item in result.items for source in item.sources} == {"popularity"}


def test_rotation_is_what_a_variants_configuration_version_can_change(shop):
    # given: version 2 turns rotation on for customer lists; version 1 (active) does not
    rotation = {"customer": {"rate": 0.5, "hours": 24, "min_impressions": 3}}
    RecommendationConfig.objects.create(
        version=2, config=SHOP_CONFIG.replace(rotation=rotation).to_dict(), is_active=False
    )
    customers = {c: Customer.objects.get(external_id=c) for c in CUSTOMERS}
    # Every candidate (k=8): a demotion may lift one into the top 4.
    base = {
        c: {
            i.product.external_id: i.score
            for i in customer_recommendations(customer=customers[c], k=8, log=False).items
        }
        for c in CUSTOMERS
    }
    # and: every customer was shown their top product 3 times in the last hours
    for c in CUSTOMERS:
        for _ in range(3):
            RecommendationLog.objects.create(
                kind="customer", customer=customers[c], product_ids=[next(iter(base[c]))]
            )
    experiment = running(
        variants=[
            services.VariantSpec("control", 50),
            services.VariantSpec("rotation", 50, config_version=2),
        ]
    )

    # when: each is served
    served = {c: customer_recommendations(customer=customers[c], k=4) for c in CUSTOMERS}

    # then: the rotation variant's customers get their top product halved, the control's not
    arms = {c: variant_of(f"c:{c}", names=("control", "rotation")) for c in CUSTOMERS}
    assert set(arms.values()) == {"control", "rotation"}
    for c, result in served.items():
        top = next(iter(base[c]))
        expected = {**base[c], top: base[c][top] * (0.5 if arms[c] == "rotation" else 1.0)}
        got = {i.product.external_id: i.score for i in result.items}
        assert (result.experiment, result.variant) == (experiment.pk, arms[c])
        assert result.config_version == (2 if arms[c] == "rotation" else 1)
        assert got == pytest.approx(
            {pid: expected[pid] for pid in sorted(expected, key=lambda p: -expected[p])[:4]},
            abs=2e-6,
        )


def test_a_product_list_shown_to_a_session_is_attributed_to_that_session(shop):
    # given: an experiment on similar lists; session S1 (of customer C4) and customer C5 are
    # each served one
    experiment = running(
        lists=["similar"],
        variants=[services.VariantSpec("control", 50), services.VariantSpec("treatment", 50)],
    )
    c4, c5 = (Customer.objects.get(external_id=c) for c in ("C4", "C5"))
    for_session = similar_products(product=ink(), k=2, session_id="S1")
    for_customer = similar_products(product=ink(), k=2, customer=c5)
    now = timezone.now()
    # and: S1 clicks its first product (an event of C4 in that session), C5 buys its second
    add_event(c4, for_session.items[0].product.external_id, event_type="click",
              at=now + timedelta(minutes=5), session="S1")  # fmt: skip
    add_event(c5, for_customer.items[1].product.external_id, event_type="purchase",
              at=now + timedelta(hours=2))  # fmt: skip

    # when: the attribution runs
    counts = services.experiment_results_refresh(experiment=experiment, now=now + timedelta(8))

    # then: each list's visitor gets its event, by the window rule
    assert (counts["window"], counts["lists"], counts["visitors"]) == (2, 2, 2)
    stats = {
        s.visitor: (s.variant, s.impressions, s.clicks, s.purchases)
        for s in VisitorStats.objects.filter(experiment=experiment)
    }
    assert stats == {
        "s:S1": (variant_of("s:S1"), 1, 1, 0),
        "c:C5": (variant_of("c:C5"), 1, 0, 1),
    }


# Over HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/api/v1/products/INK-1/similar", "/api/v1/products/INK-1/bought-together",
     "/api/v1/products/trending"],
)  # fmt: skip
def test_product_endpoints_take_a_customer_id_or_session_id(shop, read_client, url):
    kind = url.rsplit("/", 1)[1].replace("-", "_")
    experiment = running(lists=[kind])

    by_customer = read_client.get(url, {"k": 2, "customer_id": "C3"}).json()
    by_session = read_client.get(url, {"k": 2, "session_id": "S4"}).json()
    # A customer id the shop has not sent yet is ignored: the session (if any) is the visitor.
    unknown = read_client.get(url, {"k": 2, "customer_id": "NEW-1", "session_id": "S4"}).json()
    neither = read_client.get(url, {"k": 2, "customer_id": "NEW-1"}).json()

    assert (by_customer["experiment"], by_customer["variant"]) == (
        experiment.pk, variant_of("c:C3"),
    )  # fmt: skip
    assert (by_session["experiment"], by_session["variant"]) == (
        experiment.pk, variant_of("s:S4"),
    )  # fmt: skip
    assert (unknown["experiment"], unknown["variant"]) == (experiment.pk, variant_of("s:S4"))
    assert (neither["experiment"], neither["variant"], len(neither["results"])) == (
        None, None, 2,
    )  # fmt: skip
    rows = RecommendationLog.objects.filter(kind=kind).order_by("id")
    assert list(rows.values_list("customer__external_id", "session_id")) == [
        ("C3", ""), (None, "S4"), (None, "S4"), (None, ""),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("customer_id=not%20an%20id", "customer_id",
         "must use only ASCII letters, digits and - . _ ~ : @ (at least one letter or digit), "
         "got 'not an id'"),
        ("customer_id=", "customer_id", "must not be empty; leave the parameter out instead"),
        ("session_id=", "session_id", "must not be empty; leave the parameter out instead"),
        (f"session_id={'s' * 129}", "session_id", "longer than 128 characters (129)"),
        ("session_id=%20%20", "session_id", "This field may not be blank."),
    ],
)  # fmt: skip
def test_a_bad_visitor_is_refused_naming_the_parameter(shop, read_client, query, field, message):
    for url in ("/api/v1/products/INK-1/similar", "/api/v1/products/INK-1/bought-together",
                "/api/v1/products/trending"):  # fmt: skip
        response = read_client.get(f"{url}?{query}")

        assert response.status_code == 400, url
        assert response.json() == {
            "detail": f"{field}: {message}",
            "errors": [{"field": field, "message": message}],
        }
    assert not RecommendationLog.objects.exists()


def test_an_experiment_on_product_lists_is_created_over_the_api(admin_client_api):
    body = {
        "name": "similar: rules or not",
        "lists": ["similar", "bought_together", "trending"],
        "variants": [
            {"name": "rules", "share": 50},
            {"name": "no rules", "share": 50, "rules": False},
        ],
        "starts_at": timezone.now().isoformat(),
    }

    created = admin_client_api.post("/api/v1/experiments/", body, format="json")
    refused = admin_client_api.post(
        "/api/v1/experiments/", {**body, "name": "x", "lists": ["win_back"]}, format="json"
    )

    assert created.status_code == 201
    assert created.json()["lists"] == ["similar", "bought_together", "trending"]
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {"field": "lists[0]", "message": '"win_back" is not a valid choice.'}
    ]
