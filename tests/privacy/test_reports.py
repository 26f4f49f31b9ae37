"""Shareable reports: every figure goes through k-suppression or the Laplace mechanism, on the
API's path and the dashboard's; a report is released once and read back as released; the budget
holds; permissions as the rest of the API; audited.

The shop (tests/recommender/shop.py) has three categories: Office bought by C1-C3 (3 buyers),
Kitchen by C4-C5 (2), Home by C6-C8 (3), all purchases between 2024-05-01 and 2024-05-23.
Tests that need exact figures set ε so high that the noise is below a millionth (its scale is
Δ/ε), which leaves rounding and the k rule to check; the calibration itself is checked with a
seeded generator and in test_aggregates.py.
"""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser

from churn.models import ChurnScore
from experiments import services as experiment_services
from experiments.models import VisitorStats
from jobs.choices import JobState
from jobs.models import Job
from privacy.aggregates import noise_generator
from privacy.models import AggregateRelease, AuditEntry
from privacy.services.reports import (
    REPORT_KIND,
    ReportError,
    ReportSpec,
    report_release,
    report_spec_check,
)
from privacy.tasks import privacy_report_run, report_start
from recommender.models import Customer, Event, Product
from recommender.services.activity import StatRow, stats_add
from tests.recommender.shop import T0

pytestmark = pytest.mark.django_db

EXACT = {"RECSITE_AGGREGATE_EPSILON": 1e9, "RECSITE_AGGREGATE_EPSILON_BUDGET": 0.0}


@pytest.fixture
def exact(settings):
    for name, value in EXACT.items():
        setattr(settings, name, value)
    return settings


def _purchase(customer, product_id, *, value=None, at=T0):
    product = Product.objects.get(external_id=product_id)
    Event.objects.create(
        event_id=f"x-{Event.objects.count() + 1}", customer=customer, product=product,
        event_type="purchase", occurred_at=at, value=value,
    )  # fmt: skip
    stats_add(rows=[StatRow(customer.pk, product.pk, "purchase", at)])


def _churn_run(bands):
    """One scoring run: ``bands`` customers in each band (new customers S1, S2, ...)."""
    at = datetime(2024, 6, 1, tzinfo=UTC)
    n = 0
    for band, count in bands.items():
        for _ in range(count):
            n += 1
            customer = Customer.objects.create(external_id=f"S{n}")
            ChurnScore.objects.create(
                customer=customer, score=0.5, band=band, model_version="m1", as_of=at,
                computed_at=at,
            )  # fmt: skip


def _experiment():
    spec = experiment_services.ExperimentSpec(
        name="blend test", lists=["customer"], starts_at=T0,
        variants=[experiment_services.VariantSpec("control", 50),
                  experiment_services.VariantSpec("treatment", 50)],
    )  # fmt: skip
    experiment = experiment_services.experiment_start(
        experiment=experiment_services.experiment_create(spec=spec)
    )
    # control: 8 visitors, 6 of whom bought (one for 5,000, clipped at 1,000); treatment: 4.
    revenues = [10, 20, 30, 40, 50, 5000, 0, 0]
    for i, revenue in enumerate(revenues):
        VisitorStats.objects.create(
            experiment=experiment, variant="control", visitor=f"c:V{i}", impressions=2,
            filled=2, clicks=1, carts=0, purchases=1 if revenue else 0, revenue=Decimal(revenue),
        )  # fmt: skip
    for i in range(4):
        VisitorStats.objects.create(
            experiment=experiment, variant="treatment", visitor=f"c:T{i}", impressions=2,
            filled=2, clicks=0, carts=0, purchases=1, revenue=Decimal(30),
        )  # fmt: skip
    return experiment


def _section(document, name):
    (section,) = [s for s in document["sections"] if s["name"] == name]
    return section


def _texts(section):
    keys = [c["key"] for c in section["columns"]]
    return {row["group"]: [row["values"][k]["text"] for k in keys] for row in section["rows"]}


def _release(sections, **kwargs):
    spec = report_spec_check(sections=sections, **kwargs)
    return report_release(spec=spec, requested_by="user:boss").document


# The figures ---------------------------------------------------------------------------------


def test_churn_bands_below_k_are_suppressed_with_a_complementary_band(shop, settings):
    _churn_run({"low": 20, "medium": 4, "high": 6})

    document = _release(["churn_bands"])

    section = _section(document, "churn_bands")
    assert section["mechanism"] == "k-suppression"
    assert section["queries"] == []
    assert _texts(section) == {
        "low": ["20"], "medium": ["suppressed"], "high": ["suppressed"],
    }  # fmt: skip
    assert section["total"] == {"customers": {"value": 30, "text": "30"}}
    # Nothing in the document gives medium's 4 or high's 6 back.
    assert [row["values"]["customers"]["value"] for row in section["rows"]] == [20, None, None]
    assert document["epsilon"] == 0.0


def test_a_band_of_exactly_k_customers_is_shown(shop):
    _churn_run({"low": 20, "medium": 5, "high": 9})

    section = _section(_release(["churn_bands"]), "churn_bands")

    assert _texts(section) == {"low": ["20"], "medium": ["5"], "high": ["9"]}
    assert section["total"]["customers"]["value"] == 34


def test_category_buyers_go_through_the_laplace_mechanism_and_small_ones_read_below_k(shop, exact):
    exact.RECSITE_AGGREGATE_K = 3

    section = _section(_release(["categories"]), "categories")

    assert section["mechanism"] == "laplace"
    # Office and Home have exactly k = 3 buyers and are shown; Kitchen's 2 read "< 3", and
    # its revenue is withheld with them.
    assert _texts(section) == {
        "Home": ["3", "0"], "Kitchen": ["< 3", "suppressed"], "Office": ["3", "0"],
    }  # fmt: skip
    buyers, revenue = section["queries"]
    assert (buyers["measure"], buyers["sensitivity"], buyers["epsilon"]) == ("buyers", 3, 5e8)
    assert (revenue["sensitivity"], revenue["epsilon"]) == (3000.0, 5e8)


def test_each_customer_counts_in_at_most_m_categories_with_revenue_clipped(shop, exact):
    exact.RECSITE_AGGREGATE_K = 2
    exact.RECSITE_AGGREGATE_MAX_CATEGORIES = 2
    exact.RECSITE_AGGREGATE_REVENUE_CLIP = 1000.0
    wide = Customer.objects.create(external_id="WIDE")
    # Office twice, Kitchen and Home once each: Office and (by name, among equals) Home count.
    _purchase(wide, "INK-1", value=Decimal("5000.00"))
    _purchase(wide, "INK-2", value=Decimal("10.00"))
    _purchase(wide, "MUG-1", value=Decimal("7.00"))
    _purchase(wide, "LAMP-1", value=Decimal("3.00"))

    section = _section(_release(["categories"]), "categories")

    # Office: 3 + WIDE, revenue min(5010, 1000); Kitchen: 2 (WIDE not counted); Home: 3 + WIDE.
    assert _texts(section) == {
        "Home": ["4", "3"], "Kitchen": ["2", "0"], "Office": ["4", "1,000"],
    }  # fmt: skip
    assert section["queries"][0]["sensitivity"] == 2
    assert section["queries"][1]["sensitivity"] == 2000.0


def test_the_noise_is_drawn_at_the_documented_scale_in_the_documented_order(shop, settings):
    # Default ε = 1 over the two category queries: buyers b = 3 / 0.5 = 6, revenue 3000 / 0.5.
    spec = report_spec_check(sections=["categories"])

    document = report_release(spec=spec, requested_by="user:boss", rng=noise_generator(11)).document

    draws = np.random.default_rng(11)
    buyers = np.array([3, 2, 3]) + draws.laplace(0.0, 6.0, size=3)  # Home, Kitchen, Office
    revenue = np.zeros(3) + draws.laplace(0.0, 6000.0, size=3)
    expected = {}
    for name, b, r in zip(["Home", "Kitchen", "Office"], buyers, revenue, strict=True):
        b, r = max(0, round(b)), max(0, round(r))
        expected[name] = ["< 5", "suppressed"] if b < 5 else [f"{b:,}", f"{r:,}"]
    section = _section(document, "categories")
    assert _texts(section) == expected
    assert [(q["scale"], q["epsilon"]) for q in section["queries"]] == [(6.0, 0.5), (6000.0, 0.5)]
    assert document["epsilon"] == 1.0


def test_the_customers_and_weekly_sections_state_their_sensitivities(shop, exact):
    # The window: the 10 days up to 2024-05-23 (C6 on the 21st, C7 the 22nd, C8 the 23rd)
    document = _release(["customers", "weekly_active"], days=10)

    assert document["window"] == {"days": 10, "start": "2024-05-14", "end": "2024-05-23"}
    customers = _section(document, "customers")
    assert _texts(customers) == {
        "customers held": ["8"], "active in the window": ["< 5"],
        "buying in the window": ["< 5"],
    }  # fmt: skip
    assert customers["queries"][0]["sensitivity"] == 3
    weekly = _section(document, "weekly_active")
    # Weeks of 13 and 20 May; a customer can be in both: sensitivity 2.
    assert _texts(weekly) == {"week of 2024-05-13": ["< 5"], "week of 2024-05-20": ["< 5"]}
    assert weekly["queries"][0]["sensitivity"] == 2
    # ε is split equally over the two queries
    assert [s["queries"][0]["epsilon"] for s in document["sections"]] == [5e8, 5e8]


def test_an_experiments_variants_below_k_are_withheld_with_everything_that_depends_on_them(
    shop, exact
):
    experiment = _experiment()

    section = _section(_release(["experiment"], experiment=experiment.pk), "experiment")

    assert section["experiment"] == {"id": experiment.pk, "name": "blend test"}
    assert section["unit"] == "visitor"
    assert _texts(section) == {
        # 8 visitors, 6 bought, revenue 10+20+30+40+50+min(5000, 1000) = 1,150.
        "control": ["8", "6", "75.0%", "1,150", "143.75"],
        "treatment": ["< 5", "suppressed", "suppressed", "suppressed", "suppressed"],
    }
    assert [q["sensitivity"] for q in section["queries"]] == [1, 1, 1000.0]


# Asking for one ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"sections": []}, "sections", "choose at least one"),
        ({"sections": ["people"]}, "sections", "unknown section(s): people"),
        ({"sections": ["customers"], "days": 0}, "days", "between 1 and 3650"),
        ({"sections": ["experiment"]}, "experiment", "needs an experiment"),
        ({"sections": ["experiment"], "experiment": 999}, "experiment", "does not exist"),
        ({"sections": ["customers"], "experiment": 1}, "experiment", "only read by"),
    ],
)
def test_a_report_asked_for_wrongly_is_refused_naming_the_field(kwargs, field, message):
    with pytest.raises(ReportError) as refused:
        report_spec_check(**kwargs)

    assert refused.value.field == field
    assert message in refused.value.message


def test_the_budget_refuses_a_report_with_noise_once_spent_but_not_one_of_churn_bands(
    shop, settings
):
    settings.RECSITE_AGGREGATE_EPSILON = 1.0
    settings.RECSITE_AGGREGATE_EPSILON_BUDGET = 2.0
    _release(["customers"])
    _release(["categories"])
    _release(["churn_bands"])  # Spends nothing.

    with pytest.raises(ReportError, match="the privacy budget is spent") as refused:
        report_spec_check(sections=["customers", "churn_bands"])

    assert "spent ε = 2 of 2" in refused.value.message
    assert list(AggregateRelease.objects.order_by("pk").values_list("epsilon", flat=True)) == [
        1.0, 1.0, 0.0,
    ]  # fmt: skip
    report_spec_check(sections=["churn_bands"])  # Still allowed.
    # Releases older than the budget's days no longer count.
    AggregateRelease.objects.update(released_at=datetime.now(UTC) - timedelta(days=366))
    report_spec_check(sections=["customers"])


def test_a_report_with_no_event_yet_says_so(db, exact):
    document = _release(["customers", "weekly_active", "categories"])

    assert document["window"] is None
    assert _texts(_section(document, "customers"))["customers held"] == ["< 5"]
    assert _section(document, "weekly_active")["notes"] == ["No events yet."]
    assert _section(document, "categories")["rows"] == []


# The API's path ------------------------------------------------------------------------------


def test_the_api_releases_a_report_through_a_job_and_reads_it_back_as_released(
    shop, admin_client_api, django_capture_on_commit_callbacks, exact
):
    _churn_run({"low": 20, "medium": 4, "high": 6})
    exact.RECSITE_AGGREGATE_K = 3

    with django_capture_on_commit_callbacks(execute=True):
        started = admin_client_api.post(
            "/api/v1/privacy/reports",
            {"sections": ["categories", "churn_bands"], "days": 60, "note": "for our supplier"},
            format="json",
        )

    assert started.status_code == 202, started.json()
    job = Job.objects.get(pk=started.json()["id"])
    assert (job.kind, job.state) == (REPORT_KIND, JobState.SUCCEEDED)
    release = AggregateRelease.objects.get()
    assert job.counts == {"release": release.pk, "epsilon": 1e9}
    body = admin_client_api.get(f"/api/v1/privacy/reports/{release.pk}").json()
    assert body == admin_client_api.get(f"/api/v1/privacy/reports/{release.pk}").json()
    assert (body["id"], body["format"], body["note"], body["k"]) == (
        release.pk, "recsite-shareable-report", "for our supplier", 3,
    )  # fmt: skip
    assert _texts(_section(body, "categories")) == {
        "Home": ["3", "0"], "Kitchen": ["< 3", "suppressed"], "Office": ["3", "0"],
    }  # fmt: skip
    # k = 3: the churn table is exact, and no band is below 3.
    assert _texts(_section(body, "churn_bands")) == {"low": ["20"], "medium": ["4"], "high": ["6"]}
    listed = admin_client_api.get("/api/v1/privacy/reports").json()
    assert listed["results"] == [
        {
            "id": release.pk, "released_at": listed["results"][0]["released_at"],
            "requested_by": "user:boss", "note": "for our supplier",
            "sections": ["categories", "churn_bands"], "days": 60, "k": 3, "epsilon": 1e9,
            "job": job.pk,
        }
    ]  # fmt: skip


def test_the_api_suppresses_small_churn_bands_with_the_default_k(
    shop, admin_client_api, django_capture_on_commit_callbacks
):
    _churn_run({"low": 20, "medium": 4, "high": 6})

    with django_capture_on_commit_callbacks(execute=True):
        started = admin_client_api.post(
            "/api/v1/privacy/reports", {"sections": ["churn_bands"]}, format="json"
        )

    release_id = Job.objects.get(pk=started.json()["id"]).counts["release"]
    body = admin_client_api.get(f"/api/v1/privacy/reports/{release_id}").json()
    section = _section(body, "churn_bands")
    assert _texts(section) == {"low": ["20"], "medium": ["suppressed"], "high": ["suppressed"]}
    assert section["total"]["customers"]["text"] == "30"
    assert [row["values"]["customers"] for row in section["rows"]] == [
        {"value": 20, "text": "20"},
        {"value": None, "text": "suppressed"},
        {"value": None, "text": "suppressed"},
    ]


def test_api_refusals_are_clear_4xx_answers(shop, admin_client_api, settings):
    post = lambda body: admin_client_api.post("/api/v1/privacy/reports", body, format="json")  # noqa: E731

    unknown = post({"sections": ["people"]})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"].startswith("sections")
    assert post({"sections": "customers"}).status_code == 400
    assert post({"sections": ["customers"], "days": 0}).status_code == 400
    no_experiment = post({"sections": ["experiment"]})
    assert no_experiment.status_code == 422
    assert no_experiment.json()["errors"] == [
        {"field": "experiment", "message": "the experiment section needs an experiment"}
    ]
    huge = post({"sections": ["experiment"], "experiment": 2**70})
    assert huge.status_code == 400
    assert admin_client_api.get("/api/v1/privacy/reports/99999999999999999999").status_code == 404
    assert admin_client_api.get("/api/v1/privacy/reports/7").status_code == 404
    settings.RECSITE_AGGREGATE_EPSILON_BUDGET = 0.5
    spent = post({"sections": ["customers"]})
    assert spent.status_code == 422
    assert "RECSITE_AGGREGATE_EPSILON_BUDGET" in spent.json()["errors"][0]["message"]
    assert not Job.objects.filter(kind=REPORT_KIND).exists()


def test_a_second_report_while_one_is_being_made_is_a_conflict(shop, admin_client_api):
    first = admin_client_api.post(
        "/api/v1/privacy/reports", {"sections": ["churn_bands"]}, format="json"
    )  # Its job is queued: the test's transaction never commits, so it is never sent.
    second = admin_client_api.post(
        "/api/v1/privacy/reports", {"sections": ["churn_bands"]}, format="json"
    )

    assert (first.status_code, second.status_code) == (202, 409)
    assert second.json()["detail"] == "sections: a report is being made; wait for it"


@pytest.mark.parametrize(
    ("principal", "expected"),
    [("admin", (200, 202)), ("privacy", (200, 202)), ("merchandiser", (403, 403)),
     ("read", (403, 403)), ("ingest", (403, 403)), ("anonymous", (401, 401))],
)  # fmt: skip
def test_reports_are_for_admins_and_privacy_tokens(
    principal, expected, shop, admin_client_api, merchandiser_client, make_token_client,
    anon_client,
):  # fmt: skip
    client = {
        "admin": admin_client_api, "merchandiser": merchandiser_client, "anonymous": anon_client,
    }.get(principal) or make_token_client(principal)  # fmt: skip

    listed = client.get("/api/v1/privacy/reports")
    started = client.post("/api/v1/privacy/reports", {"sections": ["churn_bands"]}, format="json")

    assert (listed.status_code, started.status_code) == expected


def test_a_report_is_audited_when_asked_for_and_when_released(
    shop, make_token_client, django_capture_on_commit_callbacks
):
    client = make_token_client("privacy")
    mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            "/api/v1/privacy/reports", {"sections": ["churn_bands"], "days": 30}, format="json"
        )

    job_id = started.json()["id"]
    release = AggregateRelease.objects.get()
    entries = list(
        AuditEntry.objects.filter(id__gt=mark)  # Not the set-up's.
        .order_by("id")
        .values_list("actor", "action", "target")
    )
    actor = release.requested_by
    assert actor.startswith("token:")
    assert actor.endswith("(test-privacy)")
    assert entries == [
        (actor, "report.request", f"job:{job_id}"),
        (actor, "report.release", f"aggregate-release:{release.pk}"),
    ]


def test_a_job_whose_budget_went_meanwhile_fails_and_releases_nothing(shop, settings):
    settings.RECSITE_AGGREGATE_EPSILON_BUDGET = 1.0
    spec = report_spec_check(sections=["customers"])
    job = report_start(spec=spec, triggered_by=AnonymousUser())
    report_release(spec=ReportSpec(sections=("categories",)), requested_by="user:other")

    with pytest.raises(ReportError):  # Eager tasks propagate; a worker logs it.
        privacy_report_run.delay(job_id=job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "the privacy budget is spent" in job.error
    assert AggregateRelease.objects.count() == 1


# The dashboard's path ------------------------------------------------------------------------


def _cells(html, section):
    """The report page's table of one section: [(group, [cell texts])]."""
    match = re.search(rf'id="section-{section}".*?</section>', html, re.S)
    assert match is not None
    block = match.group(0)
    rows = re.findall(r'<tr(?: class="total")?><td class="group">(.*?)</td>(.*?)</tr>', block)
    return [(group, re.findall(r'<td class="num">(.*?)</td>', cells)) for group, cells in rows]


def test_the_dashboard_releases_a_report_and_shows_and_downloads_it_as_released(
    shop, client, admin_user, django_capture_on_commit_callbacks
):
    _churn_run({"low": 20, "medium": 4, "high": 6})
    client.force_login(admin_user)

    page = client.get("/dashboard/privacy/reports/")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(
            "/dashboard/privacy/reports/",
            {"sections": ["churn_bands"], "days": "90", "note": "board pack"},
        )

    release = AggregateRelease.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == f"/dashboard/privacy/reports/?job={release.job_id}"
    history = client.get("/dashboard/privacy/reports/history").content.decode()
    assert f'data-report="{release.pk}"' in history
    shown = client.get(f"/dashboard/privacy/reports/{release.pk}/").content.decode()
    assert _cells(shown, "churn_bands") == [
        ("low", ["20"]), ("medium", ["suppressed"]), ("high", ["suppressed"]), ("total", ["30"]),
    ]  # fmt: skip
    download = client.get(f"/dashboard/privacy/reports/{release.pk}/csv")
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows == [
        ["section", "group", "measure", "value", "shown"],
        ["churn_bands", "low", "customers", "20", "20"],
        ["churn_bands", "medium", "customers", "", "suppressed"],
        ["churn_bands", "high", "customers", "", "suppressed"],
        ["churn_bands", "total", "customers", "30", "30"],
    ]


def test_the_dashboard_shows_a_refused_report_next_to_its_field(shop, client, admin_user, settings):
    settings.RECSITE_AGGREGATE_EPSILON_BUDGET = 0.5
    client.force_login(admin_user)

    response = client.post("/dashboard/privacy/reports/", {"sections": ["customers"], "days": "90"})

    assert response.status_code == 400
    assert "the privacy budget is spent" in response.content.decode()
    assert not AggregateRelease.objects.exists()


def test_the_report_pages_are_for_admins(shop, client, merchandiser):
    client.force_login(merchandiser)

    assert client.get("/dashboard/privacy/reports/").status_code == 403
    assert client.get("/dashboard/privacy/reports/1/").status_code == 403
    client.logout()
    assert client.get("/dashboard/privacy/reports/").status_code == 302  # To the login page.


def test_an_unknown_report_page_is_a_404(shop, client, admin_user):
    client.force_login(admin_user)

    assert client.get("/dashboard/privacy/reports/5/").status_code == 404
    assert client.get("/dashboard/privacy/reports/99999999999999999999/csv").status_code == 404
