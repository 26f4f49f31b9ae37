"""The churn API: a customer's score, the at-risk list, win-back lists, the scoring job."""

import pytest

from churn import services
from churn.models import ChurnJobKind, ChurnScore, RiskBand
from churn.tasks import churn_job_run
from jobs.models import Job
from recommender.models import Customer
from tests.churn.shop import AS_OF

pytestmark = pytest.mark.django_db

CHURN = "/api/v1/customers/{}/churn"
AT_RISK = "/api/v1/customers/at-risk"


@pytest.fixture
def scored(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)
    return churn_shop


def test_customer_churn_returns_score_band_and_drivers(read_client, scored):
    response = read_client.get(CHURN.format("STOPPED"))

    assert response.status_code == 200
    body = response.json()
    row = ChurnScore.objects.get(customer__external_id="STOPPED")
    assert body["customer_id"] == "STOPPED"
    assert body["score"] == row.score
    assert body["band"] == "high"
    assert body["model_version"] == row.model_version
    assert body["as_of"] == "2024-08-28T00:00:00Z"
    # Recency drives this stopped customer's risk: every other driver stays under one point.
    # (Which of those small effects pass the half-point cut depends on the CPU's floating-point
    # path through the BG/NBD fit, e.g. 0.0053 for bgnbd_expected on an AVX-512 machine.)
    top, *others = body["drivers"]
    assert top["feature"] == "recency_days"
    assert top["effect"] > 0.1
    assert all(driver["effect"] < 0.01 for driver in others)
    assert set(top) == {"feature", "label", "value", "typical", "effect"}
    assert "computed_at" in body


def test_unknown_customer_is_a_404_naming_it(read_client, scored):
    response = read_client.get(CHURN.format("NOPE"))
    assert response.status_code == 404
    assert response.json() == {"detail": "Customer 'NOPE' not found."}


def test_unscored_customer_is_a_404_that_says_why(read_client, scored):
    Customer.objects.create(external_id="FRESH")
    response = read_client.get(CHURN.format("FRESH"))
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Customer 'FRESH' has no churn score yet")


def test_at_risk_is_a_route_not_a_customer_id(read_client, scored):
    response = read_client.get(AT_RISK, {"band": "high", "limit": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == "2024-08-28T00:00:00Z"
    assert [r["band"] for r in body["results"]] == ["high"] * 5
    scores = [r["score"] for r in body["results"]]
    top = ChurnScore.objects.order_by("-score", "customer__external_id")[:5]
    assert scores == [s.score for s in top]


def test_at_risk_without_band_lists_high_and_medium(read_client, scored):
    body = read_client.get(AT_RISK, {"limit": 500}).json()
    expected = ChurnScore.objects.filter(band__in=[RiskBand.HIGH, RiskBand.MEDIUM]).count()
    assert len(body["results"]) == expected
    assert {r["band"] for r in body["results"]} <= {"high", "medium"}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"band": "severe"}, "band", '"severe" is not a valid choice.'),
        ({"limit": "0"}, "limit", "Ensure this value is greater than or equal to 1."),
        ({"limit": "501"}, "limit", "Ensure this value is less than or equal to 500."),
        ({"limit": "many"}, "limit", "expected a whole number, got 'many'"),
        # An empty value was read as "no band" (every band); it is a mistake, named as such.
        ({"band": ""}, "band", "must not be empty; leave the parameter out instead"),
    ],
)
def test_at_risk_bad_parameters_are_400_naming_the_parameter(read_client, params, field, message):
    response = read_client.get(AT_RISK, params)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


def test_at_risk_before_any_scoring_is_empty(read_client):
    assert read_client.get(AT_RISK).json() == {"as_of": None, "model_version": None, "results": []}


def test_win_back_lists_items_with_reasons(read_client, scored, fresh_serving):
    response = read_client.get("/api/v1/customers/STOPPED/win-back", {"k": 3})

    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "STOPPED"
    assert body["churn"]["band"] == "high"
    assert body["note"] == "No recommendation engine is fitted yet: repurchase candidates only."
    assert [(r["product"]["product_id"], r["source"]) for r in body["results"]] == [
        ("POT-1", "repurchase"),
        ("MUG-1", "repurchase"),
        ("TEA-1", "repurchase"),
    ]
    assert body["results"][2]["reason"] == (
        "Bought 22 times, about every 7 days; last bought 93 days ago"
    )


def test_win_back_unknown_customer_is_404(read_client, db):
    response = read_client.get("/api/v1/customers/NOPE/win-back")
    assert response.status_code == 404


@pytest.mark.parametrize("url", [CHURN.format("STOPPED"), AT_RISK, "/api/v1/customers/S/win-back"])
def test_reads_need_the_read_scope(url, anon_client, ingest_client):
    assert anon_client.get(url).status_code == 401
    response = ingest_client.get(url)
    assert response.status_code == 403
    assert response.json() == {"detail": "This endpoint needs the 'read' scope."}


def test_merchandisers_read_with_their_login(merchandiser_client, scored):
    assert merchandiser_client.get(CHURN.format("ACTIVE")).json()["band"] == "low"


def test_only_admins_start_a_churn_job(
    merchandiser_client, read_client, admin_client_api, django_capture_on_commit_callbacks
):
    assert merchandiser_client.post("/api/v1/jobs/churn").status_code == 403
    assert read_client.post("/api/v1/jobs/churn").status_code == 403

    with django_capture_on_commit_callbacks() as queued:
        response = admin_client_api.post("/api/v1/jobs/churn", {"retrain": True}, format="json")

    assert response.status_code == 202
    job = Job.objects.get()
    assert job.triggered_by is not None
    assert (job.kind, job.params, job.triggered_by.username) == (
        ChurnJobKind.CHURN_SCORE,
        {"retrain": True},
        "boss",
    )
    assert response.json()["id"] == job.pk
    # Sent to the workers once the job row is committed, not before.
    assert [callback.__self__ for callback in queued] == [churn_job_run.si(job_id=job.pk)]


def test_the_recommender_customer_routes_still_answer(read_client, scored):
    assert read_client.get("/api/v1/customers/STOPPED/").status_code == 200
