"""The experiments API, the recommendation responses' experiment fields, and events carrying
a recommendation_id."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import services
from experiments.models import Experiment
from recommender.models import Event, RecommendationConfig
from tests.experiments.helpers import SALT, running, variant_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_experiments():
    services.experiments_running_reset()
    yield
    services.experiments_running_reset()


def _body(**overrides):
    body = {
        "name": "hybrid vs popularity",
        "lists": ["customer"],
        "variants": [
            {"name": "control", "share": 50},
            {"name": "popularity", "share": 50, "baseline": "popularity"},
        ],
        "starts_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        "primary_metric": "ctr",
        "guardrails": [{"metric": "conversion", "max_drop_pct": 5}],
        "horizon_visitors": 500,
    }
    body.update(overrides)
    return body


def test_an_admin_creates_starts_and_lists_an_experiment(admin_client_api, read_client):
    created = admin_client_api.post("/api/v1/experiments/", _body(), format="json")
    pk = created.json()["id"]
    started = admin_client_api.post(f"/api/v1/experiments/{pk}/start")
    listed = read_client.get("/api/v1/experiments/")

    assert created.status_code == 201
    assert created.json()["state"] == "draft"
    assert created.json()["variants"] == [
        {"name": "control", "share": 50, "config_version": None, "baseline": "", "rules": True},
        {"name": "popularity", "share": 50, "config_version": None, "baseline": "popularity",
         "rules": True},
    ]  # fmt: skip
    assert created.json()["guardrails"] == [{"metric": "conversion", "max_drop_pct": 5.0}]
    assert (started.status_code, started.json()["state"]) == (200, "running")
    assert [e["name"] for e in listed.json()["results"]] == ["hybrid vs popularity"]


def test_shares_that_do_not_sum_to_100_are_a_422_naming_the_field(admin_client_api):
    body = _body(variants=[{"name": "a", "share": 60}, {"name": "b", "share": 60}])

    response = admin_client_api.post("/api/v1/experiments/", body, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "detail": "variants: the shares must sum to 100, not 120",
        "errors": [{"field": "variants", "message": "the shares must sum to 100, not 120"}],
    }
    assert not Experiment.objects.exists()


def test_a_missing_configuration_and_an_end_before_the_start_are_422(admin_client_api):
    missing = admin_client_api.post(
        "/api/v1/experiments/",
        _body(variants=[{"name": "a", "share": 50}, {"name": "b", "share": 50,
                                                     "config_version": 9}]),
        format="json",
    )  # fmt: skip
    now = timezone.now()
    backwards = admin_client_api.post(
        "/api/v1/experiments/",
        _body(starts_at=now.isoformat(), ends_at=(now - timedelta(days=1)).isoformat()),
        format="json",
    )

    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"field": "variants[1].config_version",
         "message": "no recommendation configuration has version 9"}
    ]  # fmt: skip
    assert backwards.status_code == 422
    assert backwards.json()["errors"] == [
        {"field": "ends_at", "message": "the end must come after the start"}
    ]


def test_a_bad_type_is_a_400(admin_client_api):
    response = admin_client_api.post(
        "/api/v1/experiments/", _body(variants=[{"name": "a", "share": "half"}]), format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("variants")


def test_a_running_experiments_variants_cannot_change_409(admin_client_api):
    experiment = running()

    response = admin_client_api.patch(
        f"/api/v1/experiments/{experiment.pk}/",
        {"variants": [{"name": "x", "share": 50}, {"name": "y", "share": 50}]},
        format="json",
    )
    renamed = admin_client_api.patch(
        f"/api/v1/experiments/{experiment.pk}/", {"name": "renamed"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "field": "variants",
            "message": "a running experiment's variants cannot change: only its name, "
            "description and end can; stop it and copy it to change the rest",
        }
    ]
    assert (renamed.status_code, renamed.json()["name"]) == (200, "renamed")


def test_stop_and_copy(admin_client_api):
    experiment = running()

    stopped = admin_client_api.post(f"/api/v1/experiments/{experiment.pk}/stop")
    again = admin_client_api.post(f"/api/v1/experiments/{experiment.pk}/stop")
    copied = admin_client_api.post(
        f"/api/v1/experiments/{experiment.pk}/copy", {"name": "second try"}, format="json"
    )

    assert (stopped.status_code, stopped.json()["state"]) == (200, "stopped")
    assert again.status_code == 409
    assert again.json()["errors"] == [
        {"field": "state", "message": "only a running experiment can stop; this one is stopped"}
    ]
    assert copied.status_code == 201
    assert (copied.json()["name"], copied.json()["state"], copied.json()["copied_from"]) == (
        "second try", "draft", experiment.pk,
    )  # fmt: skip


def test_reading_is_for_the_read_scope_and_changing_for_admins(read_client, merchandiser_client):
    experiment = running()

    assert read_client.get(f"/api/v1/experiments/{experiment.pk}/").status_code == 200
    assert read_client.get(f"/api/v1/experiments/{experiment.pk}/results").status_code == 200
    assert read_client.post(f"/api/v1/experiments/{experiment.pk}/stop").status_code == 403
    assert merchandiser_client.post(f"/api/v1/experiments/{experiment.pk}/stop").status_code == 403
    assert read_client.get("/api/v1/experiments/999999/").status_code == 404


def test_the_recommendation_response_names_experiment_and_variant(shop, read_client):
    experiment = running()

    body = read_client.get("/api/v1/customers/C5/recommendations", {"k": 3}).json()
    session = read_client.post(
        "/api/v1/recommendations/session", {"product_ids": ["INK-1"], "session_id": "S1"},
        format="json",
    ).json()  # fmt: skip

    assert (body["experiment"], body["variant"]) == (experiment.pk, variant_of("c:C5"))
    # The experiment covers customer lists only.
    assert (session["experiment"], session["variant"]) == (None, None)


def test_results_and_promotion(shop, admin_client_api, read_client):
    RecommendationConfig.objects.create(
        version=2, config=RecommendationConfig.objects.get(version=1).config, is_active=False
    )
    experiment = running(
        variants=[services.VariantSpec("control", 50),
                  services.VariantSpec("treatment", 50, config_version=2)],
    )  # fmt: skip
    for c in ("C1", "C2", "C3", "C4", "C5", "C6"):
        read_client.get(f"/api/v1/customers/{c}/recommendations", {"k": 3})
    services.experiment_results_refresh(experiment=experiment)

    results = read_client.get(f"/api/v1/experiments/{experiment.pk}/results").json()
    promoted = admin_client_api.post(
        f"/api/v1/experiments/{experiment.pk}/promote", {"variant": "treatment"}, format="json"
    )
    refused = admin_client_api.post(
        f"/api/v1/experiments/{experiment.pk}/promote", {"variant": "control"}, format="json"
    )

    visitors = {r["name"]: r["visitors"] for r in results["variants"]}
    expected = {"control": 0, "treatment": 0}
    for c in ("C1", "C2", "C3", "C4", "C5", "C6"):
        expected[variant_of(f"c:{c}")] += 1
    assert visitors == expected
    assert sum(r["impressions"] for r in results["variants"]) == 6
    assert results["attribution"]["lists"] == 6
    assert set(results["variants"][0]["metrics"]) == {
        "ctr", "add_to_cart_rate", "conversion", "revenue_per_mille", "coverage",
    }  # fmt: skip
    assert results["variants"][0]["metrics"]["coverage"]["value"] == 1.0
    assert (promoted.status_code, promoted.json()) == (200, {"config_version": 3})
    assert RecommendationConfig.objects.get(is_active=True).version == 3
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "variant",
         "message": "'control' serves the active configuration: there is no configuration "
         "version to promote"}
    ]  # fmt: skip
    assert SALT  # The fixed salt made the split above predictable.


def test_events_carry_an_optional_recommendation_id(shop, ingest_client, read_client):
    served = read_client.get("/api/v1/customers/C1/recommendations", {"k": 3}).json()
    rid = served["recommendation_id"]
    stranger = str(uuid.uuid4())

    response = ingest_client.post(
        "/api/v1/events/batch",
        {"items": [
            {"event_id": "a1", "customer_id": "C1", "product_id": "INK-3", "event_type": "click",
             "timestamp": "2024-06-01T10:00:00Z", "recommendation_id": rid},
            {"event_id": "a2", "customer_id": "C1", "product_id": "INK-3", "event_type": "click",
             "timestamp": "2024-06-01T10:01:00Z", "recommendation_id": stranger},
            {"event_id": "a3", "customer_id": "C1", "product_id": "INK-3", "event_type": "click",
             "timestamp": "2024-06-01T10:02:00Z"},
        ]},
        format="json",
    )  # fmt: skip
    listed = read_client.get("/api/v1/events/", {"customer": "C1", "event_type": "click"})

    assert response.status_code == 200, response.json()
    stored = dict(Event.objects.filter(event_id__in=["a1", "a2", "a3"]).values_list(
        "event_id", "recommendation_id"))  # fmt: skip
    assert {k: str(v) if v else None for k, v in stored.items()} == {
        "a1": rid, "a2": stranger, "a3": None,
    }  # fmt: skip
    shown = {e["event_id"]: e["recommendation_id"] for e in listed.json()["results"]}
    assert shown == {"a1": rid, "a2": stranger, "a3": None}


def test_a_malformed_recommendation_id_is_a_400_naming_the_field(shop, ingest_client):
    response = ingest_client.post(
        "/api/v1/events/batch",
        {"items": [{"customer_id": "C1", "product_id": "INK-3", "event_type": "click",
                    "timestamp": "2024-06-01T10:00:00Z", "recommendation_id": "not-a-uuid"}]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 0, "field": "recommendation_id",
         "message": "expected a UUID such as 123e4567-e89b-42d3-a456-426614174000"}
    ]  # fmt: skip
    assert not Event.objects.filter(event_type="click").exists()


def test_a_partial_change_still_needs_whole_variants_and_a_long_name_copies(admin_client_api):
    experiment = services.experiment_create(
        spec=services.ExperimentSpec(
            name="x" * 200, lists=["customer"],
            variants=[services.VariantSpec("a", 50), services.VariantSpec("b", 50)],
            starts_at=timezone.now(),
        )
    )  # fmt: skip

    patched = admin_client_api.patch(
        f"/api/v1/experiments/{experiment.pk}/",
        {"variants": [{"name": "a"}, {"name": "b", "share": 50}]},
        format="json",
    )
    copied = admin_client_api.post(f"/api/v1/experiments/{experiment.pk}/copy")

    assert patched.status_code == 400
    assert patched.json()["errors"] == [
        {"field": "variants.share", "message": "This field is required."}
    ]
    assert (copied.status_code, copied.json()["name"]) == (201, "x" * 180 + " (copy)")
