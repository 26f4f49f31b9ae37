"""The experiments pages, through Django's test client: the list, the results page with its
table, chart, decision and SRM state, and the admins' actions."""

import json

import pytest
from django.test import Client

from experiments import services
from experiments.models import Experiment, ExperimentState
from recommender.models import Customer, RecommendationConfig
from recommender.services.recommendations import customer_recommendations
from tests.experiments.helpers import running

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_experiments():
    services.experiments_running_reset()
    yield
    services.experiments_running_reset()


def _login(user):
    client = Client()
    client.force_login(user)
    return client


def test_a_merchandiser_sees_the_table_chart_and_decision(shop, merchandiser):
    experiment = running(variants=[services.VariantSpec("control", 50),
                                   services.VariantSpec("treatment", 50)])  # fmt: skip
    for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"):
        customer_recommendations(customer=Customer.objects.get(external_id=c), k=3)
    services.experiment_results_refresh(experiment=experiment)
    client = _login(merchandiser)

    listing = client.get("/dashboard/experiments/")
    page = client.get(f"/dashboard/experiments/{experiment.pk}/")
    html = page.content.decode()

    assert listing.status_code == 200
    assert "ranking test" in listing.content.decode()
    assert page.status_code == 200
    assert 'id="experiment-table"' in html
    assert 'data-variant="control"' in html
    assert 'data-variant="treatment"' in html
    assert 'data-chart="chart-experiment-ctr"' in html
    chart = json.loads(html.split('<script id="chart-experiment-ctr" type="application/json">')[1]
                       .split("</script>")[0])  # fmt: skip
    assert {trace["name"] for trace in chart["data"]} == {"control", "treatment"}
    assert page.context["results"].decision in html
    assert "Sample ratio check" in html
    # Merchandisers read; only admins get the buttons.
    assert 'id="experiment-stop"' not in html
    assert client.post(f"/dashboard/experiments/{experiment.pk}/stop").status_code == 403


def test_an_admin_stops_and_promotes(shop, admin_user):
    RecommendationConfig.objects.create(
        version=2, config=RecommendationConfig.objects.get(version=1).config, is_active=False
    )
    experiment = running(variants=[services.VariantSpec("control", 50),
                                   services.VariantSpec("new", 50, config_version=2)])  # fmt: skip
    client = _login(admin_user)

    page = client.get(f"/dashboard/experiments/{experiment.pk}/").content.decode()
    stopped = client.post(f"/dashboard/experiments/{experiment.pk}/stop")
    promoted = client.post(f"/dashboard/experiments/{experiment.pk}/promote", {"variant": "new"})

    assert 'id="experiment-stop"' in page
    assert 'id="experiment-promote"' in page
    assert stopped.status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.STOPPED
    assert promoted.status_code == 302
    assert RecommendationConfig.objects.get(is_active=True).version == 3


def test_an_admin_creates_a_draft_on_the_page_and_a_bad_share_is_named(shop, admin_user):
    client = _login(admin_user)
    form = {
        "name": "page test", "lists": ["customer"], "control_name": "control",
        "treatment_name": "popular", "treatment_baseline": "popularity", "treatment_share": "30",
        "primary_metric": "ctr", "horizon_visitors": "100",
    }  # fmt: skip

    created = client.post("/dashboard/experiments/create", form)
    refused = client.post(
        "/dashboard/experiments/create",
        form | {"name": "second", "treatment_baseline": "", "treatment_config_version": "9"},
    )

    experiment = Experiment.objects.get(name="page test")
    assert created.status_code == 302
    assert [(v.name, v.share, v.baseline) for v in experiment.variants.all()] == [
        ("control", 70, ""), ("popular", 30, "popularity"),
    ]  # fmt: skip
    assert refused.status_code == 400
    assert refused.context["form"].errors == {
        "treatment_config_version": ["no recommendation configuration has version 9"]
    }
    assert not Experiment.objects.filter(name="second").exists()
