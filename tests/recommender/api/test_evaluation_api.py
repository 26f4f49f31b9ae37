"""POST /api/v1/jobs/evaluate: admins start an offline evaluation of the active configuration."""

import pytest

from jobs.choices import JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import EvaluationRun

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/evaluate"


@pytest.mark.parametrize("client_name", ["read_client", "ingest_client", "merchandiser_client"])
def test_only_admins_may_start_an_evaluation(request, client_name):
    client = request.getfixturevalue(client_name)

    response = client.post(URL, {}, format="json")

    assert (response.status_code, response.json()["detail"]) == (
        403,
        "This endpoint is for admins.",
    )
    assert Job.objects.count() == 0


def test_anonymous_requests_are_refused(anon_client):
    assert anon_client.post(URL, {}, format="json").status_code == 401


def test_an_admin_starts_an_evaluation_that_stores_a_run(
    admin_client_api, admin_user, shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_api.post(URL, {"sample": 1, "seed": 3}, format="json")

    body = response.json()
    assert (response.status_code, body["kind"], body["state"]) == (202, "evaluate", "queued")
    assert (body["params"], body["triggered_by"]) == ({"sample": 1, "seed": 3}, "boss")
    job = Job.objects.get(pk=body["id"])
    assert (job.kind, job.state) == (JobKind.EVALUATE, JobState.SUCCEEDED)
    run = EvaluationRun.objects.get()
    assert (run.config_version, run.job, run.dataset["customers"], run.dataset["eligible"]) == (
        1, job, 1, 2,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"sample": 0}, "sample: Ensure this value is greater than or equal to 1."),
        ({"sample": "many"}, "sample: expected an integer, got string"),
        ({"sample": "5"}, "sample: expected an integer, got string"),  # Not converted.
        ({"seed": 2**32}, "seed: Ensure this value is less than or equal to 4294967295."),
        ({"seed": -1}, "seed: Ensure this value is greater than or equal to 0."),
    ],
)
def test_bad_parameters_are_refused_naming_them(admin_client_api, body, detail):
    response = admin_client_api.post(URL, body, format="json")

    assert (response.status_code, response.json()["detail"]) == (400, detail)
    assert Job.objects.count() == 0
