"""The churn page, its Score-now action, the customer-risk fragment and the win-back page."""

from datetime import timedelta

import pytest
from django.test import Client

from churn import services
from churn.models import ChurnJobKind
from churn.tasks import churn_job_run
from jobs.models import Job
from tests.churn.shop import AS_OF

pytestmark = pytest.mark.django_db

INDEX = "/dashboard/churn/"


@pytest.fixture
def scored(churn_shop):
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)
    return churn_shop


@pytest.fixture
def merch_web(merchandiser):
    client = Client()
    client.force_login(merchandiser)
    return client


@pytest.fixture
def admin_web(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_anonymous_visitors_go_to_the_login_page(client):
    response = client.get(INDEX)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/churn/"


def test_the_page_shows_charts_at_risk_table_and_evaluation(merch_web, scored):
    response = merch_web.get(INDEX, {"band": "high", "limit": 500})

    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("chart-churn-risk", "chart-churn-roc", "chart-churn-calibration"):
        assert f'data-chart="{chart}"' in html
        assert f'<script id="{chart}" type="application/json">' in html
    assert 'id="at-risk-table"' in html
    assert '<a href="/dashboard/customers/STOPPED/">STOPPED</a>' in html
    assert 'href="/dashboard/churn/customers/STOPPED/win-back/"' in html
    # Merchandisers see no Score-now button.
    assert "Scoring runs daily; admins can start it now." in html
    assert 'action="/dashboard/churn/score"' not in html


def test_the_band_filter_shows_only_that_band(merch_web, scored):
    html = merch_web.get(INDEX, {"band": "low", "limit": 500}).content.decode()
    assert "STOPPED" not in html
    assert '<a href="/dashboard/customers/ACTIVE/">ACTIVE</a>' in html


def test_a_bad_filter_value_is_shown_next_to_its_field(merch_web, scored):
    response = merch_web.get(INDEX, {"limit": "0"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in html
    assert 'id="at-risk-table"' not in html


def test_the_page_before_any_model_says_so(merch_web):
    html = merch_web.get(INDEX).content.decode()
    assert "No customer has been scored yet." in html
    assert "No model has been trained yet." in html


def test_admins_score_now_and_watch_the_job(admin_web, django_capture_on_commit_callbacks):
    assert 'action="/dashboard/churn/score"' in admin_web.get(INDEX).content.decode()
    with django_capture_on_commit_callbacks() as queued:
        response = admin_web.post("/dashboard/churn/score")
    job = Job.objects.get()
    assert job.kind == ChurnJobKind.CHURN_SCORE
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/churn/?job={job.pk}"
    # Sent to the workers once the job row is committed, not before.
    assert [callback.__self__ for callback in queued] == [churn_job_run.si(job_id=job.pk)]
    html = admin_web.get(response["Location"]).content.decode()
    assert f'data-poll-url="/api/v1/jobs/{job.pk}/"' in html


def test_merchandisers_cannot_score_now(merch_web):
    assert merch_web.post("/dashboard/churn/score").status_code == 403
    assert Job.objects.count() == 0


def test_customer_risk_fragment(merch_web, scored):
    response = merch_web.get("/dashboard/churn/customers/STOPPED/risk")
    assert response.status_code == 200
    html = response.content.decode()
    assert "High risk" in html
    assert "One scoring run so far: the history chart starts with the second." in html
    assert "<html" not in html  # A fragment, not a page.

    # A second run (a week later) starts the history sparkline.
    services.churn_scores_refresh(as_of=AS_OF + timedelta(days=7))
    html = merch_web.get("/dashboard/churn/customers/STOPPED/risk").content.decode()
    assert 'data-chart="chart-churn-sparkline"' in html


@pytest.mark.parametrize(
    ("external_id", "message"),
    [("NOPE", "Unknown customer “NOPE”."), ("S000", None)],
)
def test_customer_risk_fragment_answers_200_without_a_score(
    merch_web, churn_shop, external_id, message
):
    response = merch_web.get(f"/dashboard/churn/customers/{external_id}/risk")
    assert response.status_code == 200
    expected = message or "Not scored yet: customers are scored once they have a purchase."
    assert expected in response.content.decode()


def test_win_back_page(merch_web, scored, fresh_serving):
    response = merch_web.get("/dashboard/churn/customers/STOPPED/win-back/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Bought 11 times, about every 14 days; last bought 93 days ago" in html
    assert 'href="/dashboard/customers/STOPPED/"' in html
