"""Forgetting: the tombstone, the customer gone at once everywhere, the purge job that refits and
retires what was made with them, the proof, the beat sweep, and the hook other apps plug into."""

import json
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.runs import job_run
from privacy.keys import customer_key
from privacy.models import AuditEntry, ForgetRequest
from privacy.registry import ForgetHandler, forget_handler_register, forget_handler_unregister
from privacy.services.checks import customer_check
from privacy.services.export import customer_export
from privacy.services.forgetting import PURGE_KIND, purge_due, purge_job_create
from privacy.tasks import privacy_purge_sweep
from recommender.models import Customer, EngineBuild, Event, RecommendationLog
from recommender.services.ingestion import customer_forget

pytestmark = pytest.mark.django_db


def _forget(external_id: str) -> ForgetRequest:
    customer_forget(customer=Customer.objects.get(external_id=external_id))
    return ForgetRequest.objects.latest("pk")


def test_delete_records_a_forget_request_and_the_customer_leaves_every_view_at_once(
    shop, admin_client_api, settings
):
    # Given C1, who bought two products, and a list served to them
    settings.RECSITE_FORGET_DEADLINE_HOURS = 24
    c1 = Customer.objects.get(external_id="C1")
    assert admin_client_api.get("/api/v1/customers/C1/recommendations").status_code == 200
    assert RecommendationLog.objects.filter(customer=c1).count() == 1

    # When an admin forgets them
    response = admin_client_api.delete("/api/v1/customers/C1/")

    # Then their rows are gone and a forget request records it, without their id
    assert response.status_code == 200
    assert response.json() == {"deleted_events": 2}
    request = ForgetRequest.objects.get()
    assert (request.customer_pk, request.customer_key, request.events_deleted) == (
        c1.pk, customer_key("C1"), 2,
    )  # fmt: skip
    assert request.requested_by == "user:boss"
    assert request.deadline_at - request.requested_at == timedelta(hours=24)
    assert (request.applied_at, request.job) == (None, None)
    assert '"C1"' not in json.dumps(list(ForgetRequest.objects.values()), default=str)
    assert Event.objects.filter(customer_id=c1.pk).count() == 0
    assert RecommendationLog.objects.filter(customer_id=c1.pk).count() == 0
    # ... they left every list, log view and dashboard page
    customers = admin_client_api.get("/api/v1/customers/").json()["results"]
    assert [c["customer_id"] for c in customers] == ["C2", "C3", "C4", "C5", "C6", "C7", "C8"]
    assert admin_client_api.get("/api/v1/customers/C1/").status_code == 404
    assert admin_client_api.get("/api/v1/events/", {"customer": "C1"}).json()["results"] == []
    page = admin_client_api.get("/dashboard/customers/").content.decode()
    assert ">C2<" in page
    assert ">C1<" not in page
    assert admin_client_api.get("/dashboard/customers/C1/").status_code == 404
    # ... and the audit log names who forgot whom (by key), once
    entry = AuditEntry.objects.exclude(action="config.version").get()  # The shop's set-up made one.
    assert (entry.actor, entry.action, entry.target, entry.detail) == (
        "user:boss", "customer.forget", f"forget-request:{request.pk}",
        {"customer_key": customer_key("C1"), "events_deleted": 2},
    )  # fmt: skip


def test_the_purge_job_refits_retires_the_builds_made_with_them_and_records_when(shop):
    # Given the engine fitted with C2's baskets, and C2 forgotten
    old = shop
    old_file = Path(old.path)
    assert old_file.is_file()
    request = _forget("C2")

    # Then, before the purge, the check names the build that still holds them
    before = customer_check(external_id="C2")
    assert before.findings == [
        f"request #{request.pk}: engine build #{old.pk} was fitted before the request"
    ]
    with pytest.raises(CommandError, match="1 places still hold the customer"):
        call_command("privacy_check", "C2", stdout=StringIO())

    # When the purge job runs
    job = purge_job_create()
    assert job is not None
    assert job.params == {"forget_requests": [request.pk]}
    job = job_run(job_id=job.pk)

    # Then a new build fitted without them serves, the old one is retired and its file gone
    assert job.state == JobState.SUCCEEDED
    new = EngineBuild.objects.get(status=BuildStatus.READY)
    assert new.pk != old.pk
    assert (new.customer_count, new.event_count) == (old.customer_count - 1, old.event_count - 3)
    old.refresh_from_db()
    assert old.status == BuildStatus.RETIRED
    assert not old_file.exists()
    # The registered apps' purges ran (social's edges went with the customer row already)
    assert job.counts["rows"] == {
        "requests": 1,
        "purged": {"social": {str(request.pk): {"relationships_deleted": 0}}},
    }
    assert job.counts["engine"] == {
        "engine_refit": True, "engine_build": new.pk, "engine_builds_retired": [old.pk],
    }  # fmt: skip
    assert job.counts["churn"] == {"churn_retrained": False}
    # ... the request records the job and when it was fully applied
    request.refresh_from_db()
    assert request.job_id == job.pk
    assert request.applied_at == datetime.fromisoformat(job.counts["verify"]["applied_at"])
    assert job.counts["verify"]["applied"] == [request.pk]
    assert job.counts["verify"]["late"] == []
    # ... and the check proves nothing holds them
    after = customer_check(external_id="C2")
    assert after.findings == []
    assert after.clean
    out = StringIO()
    call_command("privacy_check", "C2", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"forget request #{request.pk}: requested ")
    assert "by system, applied " in lines[0]
    assert lines[-1] == "OK: nothing holds the customer."


def test_privacy_check_of_a_customer_never_forgotten_fails(shop):
    with pytest.raises(CommandError, match="no forget request for this customer id"):
        call_command("privacy_check", "C3", stdout=StringIO())
    assert customer_check(external_id="C3").findings == ["the customer exists (never forgotten)"]


def test_the_forget_command_records_its_actor_and_purges_now(shop):
    out = StringIO()
    call_command("forget_customer", "C4", "--purge-now", "--no-progress", stdout=out)
    request = ForgetRequest.objects.get()
    assert request.requested_by == "command:forget_customer"
    assert request.applied_at is not None
    assert out.getvalue().splitlines()[0] == (
        f"Forgot the customer (2 events deleted); forget request #{request.pk}, to be applied "
        f"by {request.deadline_at:%Y-%m-%d %H:%M %Z}."
    )
    assert Job.objects.get(kind=PURGE_KIND).state == JobState.SUCCEEDED
    with pytest.raises(CommandError, match="customer_id: no customer 'C4'"):
        call_command("forget_customer", "C4", stdout=StringIO())


def test_purges_are_batched_until_the_oldest_request_waited_or_nears_its_deadline(shop, settings):
    settings.RECSITE_FORGET_BATCH_MINUTES = 60
    settings.RECSITE_FORGET_DEADLINE_HOURS = 24
    first, second = _forget("C1"), _forget("C4")
    at = first.requested_at
    assert purge_due(now=at + timedelta(minutes=59)) == []
    assert purge_due(now=at + timedelta(minutes=60)) == [first.pk, second.pk]
    # A batching time longer than the deadline still leaves the job a tenth of it (2.4 h).
    settings.RECSITE_FORGET_BATCH_MINUTES = 10_000
    assert purge_due(now=first.deadline_at - timedelta(hours=2.5)) == []
    assert purge_due(now=first.deadline_at - timedelta(hours=2.4)) == [first.pk, second.pk]


def test_the_beat_sweep_starts_one_purge_job_for_every_due_request(shop, settings, beat_run):
    settings.RECSITE_FORGET_BATCH_MINUTES = 0
    first, second = _forget("C1"), _forget("C4")

    beat_run(privacy_purge_sweep)

    job = Job.objects.get(kind=PURGE_KIND)
    assert job.params == {"forget_requests": [first.pk, second.pk]}
    assert job.state == JobState.SUCCEEDED
    assert ForgetRequest.objects.filter(job=job, applied_at__isnull=False).count() == 2
    # Nothing is pending any more: the next sweep starts nothing.
    beat_run(privacy_purge_sweep)
    assert Job.objects.filter(kind=PURGE_KIND).count() == 1


def test_an_app_plugs_its_own_data_into_export_purge_and_check(shop):
    # Given another app (as social does) holding copies by customer row, registered
    store: dict[int, list[str]] = {}

    def purge(request):
        removed = store.pop(request.customer_pk, [])
        return {"relationships_deleted": len(removed)} if removed else {}

    def check(request):
        rows = store.get(request.customer_pk, [])
        return [f"{len(rows)} relationship rows"] if rows else []

    forget_handler_register(
        ForgetHandler(
            name="copies",
            export=lambda customer: {"copies": store.get(customer.pk, [])},
            purge=purge,
            check=check,
        )
    )
    try:
        c3 = Customer.objects.get(external_id="C3")
        store[c3.pk] = ["follows C2"]
        assert customer_export(customer=c3)["copies"] == ["follows C2"]

        # When C3 is forgotten, the check names the app's rows until the purge
        request = _forget("C3")
        assert customer_check(external_id="C3").findings == [
            f"request #{request.pk}: copies: 1 relationship rows",
            f"request #{request.pk}: engine build #{shop.pk} was fitted before the request",
        ]
        created = purge_job_create()
        assert created is not None
        job = job_run(job_id=created.pk)

        # Then the app's purge ran inside the job and nothing holds them
        assert job.counts["rows"]["purged"] == {
            "copies": {str(request.pk): {"relationships_deleted": 1}},
            "social": {str(request.pk): {"relationships_deleted": 0}},  # The real app's.
        }
        assert store == {}
        assert customer_check(external_id="C3").findings == []
    finally:
        forget_handler_unregister("copies")


def test_a_purge_that_cannot_prove_it_fails_and_the_request_stays_pending(shop):
    forget_handler_register(ForgetHandler(name="stubborn", check=lambda request: ["a copy"]))
    try:
        request = _forget("C5")
        job = purge_job_create()
        assert job is not None
        with pytest.raises(Exception, match="still held after the purge"):
            job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.state == JobState.FAILED
        assert job.error == (
            f"verify: PurgeIncomplete: still held after the purge: "
            f"{{'{request.pk}': ['stubborn: a copy']}}"
        )
        request.refresh_from_db()
        assert request.applied_at is None
    finally:
        forget_handler_unregister("stubborn")
