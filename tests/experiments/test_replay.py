"""The replay simulator on a tiny shop whose replay is known by hand (tests/experiments/
replay_shop.py): what each visit is served and records, what the replay writes and what it
leaves alone, the command and its refusals, the API and the pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from experiments import selectors, services, simulation
from experiments.analysis.assignment import assign
from experiments.models import DailyStats, Experiment, ExperimentState, VisitorStats
from recommender.models import EngineBuild, Event, RecommendationConfig, RecommendationLog
from recommender.selectors.dashboard import recommendation_coverage
from tests.experiments.replay_shop import (
    DAY,
    EXPECTED,
    VISITS,
    replay_shop_build,
    replay_start,
    visit_starts,
)

pytestmark = pytest.mark.django_db

VARIANTS = ("popular", "empty")


@pytest.fixture
def replay_shop(fresh_serving):
    replay_shop_build()


def salt_putting(popular: set[str]) -> str:
    """A salt whose 50/50 assignment puts exactly ``popular`` in the first variant."""
    for i in range(10_000):
        salt = f"salt-{i}"
        if {c for c in EXPECTED if assign(salt, f"c:{c}", (50, 50)) == 0} == popular:
            return salt
    raise AssertionError("no such salt")


def source_experiment(salt: str, **overrides) -> Experiment:
    experiment = services.experiment_create(
        spec=services.ExperimentSpec(
            name=overrides.pop("name", "popularity vs nothing"),
            lists=["customer"],
            variants=[
                services.VariantSpec("popular", 50, baseline="popularity"),
                services.VariantSpec("empty", 50, baseline="none"),
            ],
            starts_at=datetime(2030, 1, 1, tzinfo=UTC),
            horizon_visitors=3,
            **overrides,
        )
    )
    Experiment.objects.filter(pk=experiment.pk).update(salt=salt)
    fresh = selectors.experiment_get(pk=experiment.pk)
    assert fresh is not None
    return fresh


def plan(**overrides) -> simulation.ReplayPlan:
    return simulation.ReplayPlan(**{"since": DAY, "days": 30, "k": 2, **overrides})


POPULAR = {"R1", "R3", "X1", "X2", "X3"}


@pytest.fixture
def replayed(replay_shop):
    source = source_experiment(salt_putting(POPULAR))
    replay = simulation.experiment_replay_create(plan=plan(), source=source)
    simulation.experiment_replay_run(experiment=replay)
    fresh = selectors.experiment_get(pk=replay.pk)
    assert fresh is not None
    return source, fresh


def expected_of(customer: str):
    e = EXPECTED[customer]
    return e.popular if customer in POPULAR else e.empty


def test_each_visit_is_served_its_variants_list_as_of_the_visit_and_logged_as_replayed(replayed):
    _, replay = replayed
    rows = list(
        RecommendationLog.objects.filter(experiment_id=replay.pk).order_by("created_at", "id")
    )

    got: dict[str, list[RecommendationLog]] = {}
    for row in rows:
        assert row.customer is not None
        got.setdefault(row.customer.external_id, []).append(row)
    assert sorted(got) == sorted(VISITS)
    for customer, own in got.items():
        variant = "popular" if customer in POPULAR else "empty"
        lists = EXPECTED[customer].lists if variant == "popular" else [[]] * len(own)
        # The list asked for at the visit's start, from the assigned variant, dated then.
        assert [r.created_at for r in own] == visit_starts(customer)
        assert [r.product_ids for r in own] == lists
        assert {(r.variant, r.replayed, r.kind, r.engine_build) for r in own} == {
            (variant, True, "customer", None)
        }


def test_the_replay_records_the_listed_products_touched_in_the_visit(replayed):
    _, replay = replayed
    stats = {
        v.visitor: (v.impressions, v.filled, v.clicks, v.carts, v.purchases, v.revenue)
        for v in VisitorStats.objects.filter(experiment=replay)
    }
    variants = {v.visitor: v.variant for v in VisitorStats.objects.filter(experiment=replay)}

    assert stats == {
        f"c:{c}": (*expected_of(c)[:5], Decimal(str(expected_of(c)[5]))) for c in VISITS
    }
    assert variants == {f"c:{c}": "popular" if c in POPULAR else "empty" for c in VISITS}
    totals = [expected_of(c) for c in VISITS]
    clicks, carts, purchases = (sum(t[i] for t in totals) for i in (2, 3, 4))
    missed = sum(t[6] for t in totals)
    assert (clicks, carts, purchases, missed) == (3, 3, 2, 9)
    assert replay.replay["status"] == "done"
    summary = ("visits", "customers", "clicks", "carts", "purchases", "missed")
    assert [replay.replay[k] for k in summary] == [11, 10, clicks, carts, purchases, missed]
    assert replay.replay["engine"]["events"] == 15  # Only the purchases before DAY.
    assert replay.replay["engine"]["customers"] == 5
    # Every recorded event is attributed by the id of the list that showed it.
    counted = ("explicit", "window", "unattributed", "lists", "visitors", "unknown_ids")
    assert [replay.attribution[k] for k in counted] == [
        clicks + carts + purchases, 0, missed, 11, 10, 0,
    ]  # fmt: skip


def test_the_results_page_reads_the_replay_like_any_experiment(replayed):
    _, replay = replayed
    results = selectors.experiment_results(experiment=replay)

    popular, empty = results.variants
    assert (popular.name, popular.visitors, popular.impressions) == ("popular", 5, 6)
    assert (popular.clicks, popular.carts, popular.purchases, popular.revenue) == (3, 3, 2, 15.0)
    assert (empty.name, empty.visitors, empty.impressions, empty.clicks) == ("empty", 5, 5, 0)
    assert popular.metrics["ctr"].estimate.value == pytest.approx(3 / 6)
    assert empty.metrics["coverage"].estimate.value == 0.0
    # One chart point per variant and day with visits: popular on days 1, 2, 5 and 6 after DAY
    # (R1 twice, R3, X1-X3), empty on days 3, 4 and 6 (B1, R2, X4-X6).
    days = {(d.variant, d.day.day - DAY.day) for d in DailyStats.objects.filter(experiment=replay)}
    assert days == {("popular", 1), ("popular", 2), ("popular", 5), ("popular", 6),
                    ("empty", 3), ("empty", 4), ("empty", 6)}  # fmt: skip


def test_the_replay_leaves_the_shop_as_it_was(replay_shop):
    events, build = Event.objects.count(), EngineBuild.objects.get()
    active = RecommendationConfig.objects.get(is_active=True)
    source = source_experiment(salt_putting(POPULAR))

    replay = simulation.experiment_replay_create(plan=plan(), source=source)
    simulation.experiment_replay_run(experiment=replay)

    assert Event.objects.count() == events
    assert list(EngineBuild.objects.all()) == [build]
    assert RecommendationConfig.objects.get(is_active=True) == active
    assert RecommendationConfig.objects.count() == 1
    # The replayed experiment is a draft still; its replay is a stopped experiment of its own
    # with the same assignment, covering the period.
    source.refresh_from_db()
    assert source.state == ExperimentState.DRAFT
    assert (replay.state, replay.salt, replay.copied_from_id) == (
        ExperimentState.STOPPED, source.salt, source.pk,
    )  # fmt: skip
    assert replay.ends_at is not None
    assert (replay.starts_at, (replay.ends_at - replay.starts_at).days) == (replay_start(), 30)
    assert replay.name == f"popularity vs nothing · replay from {DAY.isoformat()}, 30 days"
    # Replayed lists are not real traffic: the overview's coverage does not count them.
    assert recommendation_coverage().logs == 0


def test_running_the_replay_again_replaces_what_it_wrote(replayed):
    _, replay = replayed
    before = sorted(
        VisitorStats.objects.filter(experiment=replay).values_list("visitor", "clicks", "revenue")
    )

    simulation.experiment_replay_run(experiment=replay)

    assert RecommendationLog.objects.filter(experiment_id=replay.pk).count() == 11
    after = VisitorStats.objects.filter(experiment=replay)
    assert sorted(after.values_list("visitor", "clicks", "revenue")) == before


def test_a_replays_results_are_never_replaced_by_attribution_of_real_events(replayed):
    _, replay = replayed
    with pytest.raises(services.ExperimentError) as refused:
        services.experiment_results_refresh(experiment=replay)
    assert (refused.value.field, refused.value.conflict) == ("experiment", True)


def test_a_copy_of_a_replay_is_a_live_draft_that_starts_now(replayed):
    _, replay = replayed
    before = timezone.now()

    copy = services.experiment_copy(experiment=replay, name="blend, live")

    assert (copy.state, copy.replay, copy.ends_at) == (ExperimentState.DRAFT, None, None)
    assert copy.starts_at >= before
    assert copy.salt != replay.salt
    assert [(v.name, v.baseline) for v in copy.variants.all()] == [
        ("popular", "popularity"), ("empty", "none"),
    ]  # fmt: skip


def test_discarding_a_replay_removes_everything_it_wrote(replayed):
    source, replay = replayed

    rows = simulation.experiment_replay_discard(experiment=replay)

    assert rows == 11
    assert not Experiment.objects.filter(pk=replay.pk).exists()
    assert not RecommendationLog.objects.filter(experiment_id=replay.pk).exists()
    assert not VisitorStats.objects.filter(experiment_id=replay.pk).exists()
    with pytest.raises(services.ExperimentError, match="only a replay can be discarded"):
        simulation.experiment_replay_discard(experiment=source)


def test_deleting_a_replay_in_the_django_admin_deletes_its_log_rows(
    replayed, client, django_user_model
):
    _, replay = replayed
    client.force_login(django_user_model.objects.create_superuser("root", password="x-1234567"))

    response = client.post(f"/admin/experiments/experiment/{replay.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Experiment.objects.filter(pk=replay.pk).exists()
    assert not RecommendationLog.objects.filter(experiment_id=replay.pk).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"since": datetime(2024, 5, 1).date()}, "from", "no event happened before 2024-05-01"),
        ({"since": datetime(2024, 7, 1).date()}, "from", "no event happened on or after"),
        ({"days": 0}, "days", "from 1 to 366"),
        ({"k": 101}, "k", "from 1 to 100"),
        ({"gap_minutes": 0}, "gap_minutes", "more than 0"),
    ],
)
def test_a_plan_the_data_cannot_replay_is_refused_and_nothing_is_saved(
    replay_shop, overrides, field, message
):
    source = source_experiment("s")
    with pytest.raises(services.ExperimentError) as refused:
        simulation.experiment_replay_create(plan=plan(**overrides), source=source)
    assert refused.value.field == field
    assert message in refused.value.message
    assert Experiment.objects.count() == 1


def test_a_replay_that_cannot_fit_fails_with_the_reason_and_leaves_no_lists(
    replay_shop, settings, merchandiser
):
    settings.RECSITE_FIT_MEMORY_BUDGET = "64M"  # Less than any fit's process base.

    with pytest.raises(CommandError) as refused:
        run("--from", DAY.isoformat(), "--days", "30", "--name", "too big")

    replay = Experiment.objects.get(name="too big")
    assert "failed: replay: MemoryBudgetExceeded: Fitting the engine needs about" in str(
        refused.value
    )
    assert (replay.replay or {})["status"] == "failed"
    assert (replay.replay or {})["error"].startswith("MemoryBudgetExceeded: Fitting the engine")
    assert not RecommendationLog.objects.exists()
    assert not VisitorStats.objects.exists()
    html = _login(merchandiser).get(f"/dashboard/experiments/{replay.pk}/").content.decode()
    assert 'data-status="failed"' in html
    assert "The replay failed: MemoryBudgetExceeded: Fitting the engine" in html


def test_only_customer_lists_can_be_replayed(replay_shop):
    source = source_experiment("s")
    Experiment.objects.filter(pk=source.pk).update(lists=["session"])
    source.refresh_from_db()
    with pytest.raises(services.ExperimentError) as refused:
        simulation.experiment_replay_create(plan=plan(), source=source)
    assert refused.value.field == "lists"


# The command ---------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("simulate_traffic", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_replays_a_new_two_variant_experiment_and_prints_its_results(replay_shop):
    out = run("--from", DAY.isoformat(), "--days", "30", "--k", "2", "--name", "pop vs none",
              "--control", "popularity", "--treatment", "active", "--share", "40")  # fmt: skip

    replay = Experiment.objects.get(name="pop vs none")
    assert [(v.name, v.share, v.baseline, v.config_version) for v in replay.variants.all()] == [
        ("control", 60, "popularity", None), ("active", 40, "", None),
    ]  # fmt: skip
    assert (replay.replay or {})["status"] == "done"
    assert f"Replay {replay.pk} 'pop vs none': {DAY.isoformat()} + 30 days" in out
    assert "11 visits of 10 customers" in out
    results = selectors.experiment_results(experiment=replay, daily=False)
    for v in results.variants:
        assert f"  {v.name}: {v.visitors} visitors, {v.impressions} impressions;" in out
    assert results.decision in out


def test_the_command_with_if_missing_does_nothing_when_the_replay_exists(replayed):
    _, replay = replayed
    out = run("--from", DAY.isoformat(), "--days", "30", "--name", replay.name, "--if-missing")
    assert out == f"Nothing to do: the replay '{replay.name}' exists (experiment {replay.pk}).\n"


def test_the_command_calibrates_an_a_a_replay(replay_shop):
    out = run("--from", DAY.isoformat(), "--days", "30", "--k", "2", "--name", "A/A",
              "--aa-runs", "20")  # fmt: skip

    replay = Experiment.objects.get(name="A/A")
    assert simulation.experiment_is_aa(replay)
    found = simulation.experiment_aa_calibration(experiment=replay, runs=20)
    assert (
        "A/A calibration: 20 re-splits of 10 visitors (salts aa-0 … aa-19), two-sided z-test "
        "at alpha = 0.05:" in out
    )
    assert (
        f"  Click-through rate (primary): {found.significant['clicks']} of 20 significant "
        f"({found.rate('clicks') * 100:.1f}%)" in out
    )
    assert f"{found.srm_flagged_when_skewed} of 20 45/55 splits" in out


def test_discard_through_the_command(replayed):
    _, replay = replayed
    out = run("--discard", str(replay.pk))
    assert out == f"Discarded replay {replay.pk} '{replay.name}' and its 11 log rows.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "5", "--name", "x"], "--from: required"),
        (["--from", "2024-06-10", "--name", "x"], "--days: required"),
        (["--from", "2024-13-01", "--days", "5", "--name", "x"],
         "argument --from: expected a date as YYYY-MM-DD, got '2024-13-01'"),
        (["--from", "2024-06-10", "--days", "0", "--name", "x"],
         "argument --days: expected 1 or more, got 0"),
        (["--from", "2024-06-10", "--days", "400", "--name", "x"],
         "--days: a whole number of days from 1 to 366"),
        (["--from", "2024-05-01", "--days", "5", "--name", "x"],
         "--from: no event happened before 2024-05-01"),
        (["--from", "2024-07-01", "--days", "5", "--name", "x"],
         "--from: no event happened on or after 2024-07-01"),
        (["--from", "2024-06-10", "--days", "5"], "--experiment or --name: say what to replay"),
        (["--from", "2024-06-10", "--days", "5", "--experiment", "999"],
         "--experiment: no experiment has id 999"),
        (["--from", "2024-06-10", "--days", "5", "--name", "x", "--treatment", "bogus"],
         "--treatment: expected active, popularity, none or vN"),
        (["--from", "2024-06-10", "--days", "5", "--name", "x", "--treatment", "v9"],
         "--treatment: no recommendation configuration has version 9"),
        (["--from", "2024-06-10", "--days", "5", "--name", "x", "--control", "v0"],
         "--control: expected active, popularity, none or vN"),
        (["--from", "2024-06-10", "--days", "5", "--name", "x", "--share", "100"],
         "--share: a whole percent from 1 to 99"),
        (["--from", "2024-06-10", "--days", "5", "--name", "x", "--treatment", "none",
          "--aa-runs", "5"], "--aa-runs: an A/A replay has no --treatment"),
        (["--discard", "999"], "--discard: no experiment has id 999"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_naming_the_option_and_write_nothing(replay_shop, args, message):
    with pytest.raises(CommandError) as refused:
        run(*args)
    assert message in str(refused.value)
    assert Experiment.objects.count() == 0
    assert not RecommendationLog.objects.exists()


def test_the_command_refuses_a_calibration_of_an_experiment_whose_variants_differ(replay_shop):
    source = source_experiment("s")
    with pytest.raises(CommandError, match="--aa-runs: experiment's variants differ"):
        run("--from", DAY.isoformat(), "--days", "5", "--experiment", str(source.pk),
            "--aa-runs", "5")  # fmt: skip


# The API and the pages -----------------------------------------------------------------------


def test_the_api_starts_a_replay_job_and_refuses_what_cannot_be_replayed(
    replay_shop, admin_client_api, read_client, django_capture_on_commit_callbacks
):
    source = source_experiment(salt_putting(POPULAR))
    url = f"/api/v1/experiments/{source.pk}/replay"

    with django_capture_on_commit_callbacks(execute=True):  # Eager: the job runs here.
        made = admin_client_api.post(url, {"since": "2024-06-10", "days": 30, "k": 2},
                                     format="json")  # fmt: skip

    assert made.status_code == 202
    body = made.json()
    replay = Experiment.objects.get(pk=body["experiment"]["id"])
    assert body["experiment"]["replay"]["from"] == "2024-06-10"
    assert body["job"]["kind"] == "experiment_replay"
    assert (replay.replay or {})["status"] == "done"
    assert VisitorStats.objects.filter(experiment=replay).count() == 10
    detail = read_client.get(f"/api/v1/experiments/{replay.pk}/").json()
    assert detail["replay"]["visits"] == 11
    assert read_client.get(f"/api/v1/experiments/{source.pk}/").json()["replay"] is None

    before = admin_client_api.post(url, {"since": "2024-05-01", "days": 5}, format="json")
    zero = admin_client_api.post(url, {"since": "2024-06-10", "days": 0}, format="json")
    again = admin_client_api.post(
        f"/api/v1/experiments/{replay.pk}/replay", {"since": "2024-06-10", "days": 5},
        format="json",
    )  # fmt: skip
    refresh = admin_client_api.post(f"/api/v1/experiments/{replay.pk}/refresh")
    reader = read_client.post(url, {"since": "2024-06-10", "days": 5}, format="json")

    assert before.status_code == 422
    assert "since" in before.json()["errors"][0]["field"]
    assert zero.status_code == 400
    assert again.status_code == 409
    assert refresh.status_code == 409
    assert reader.status_code == 403
    assert Experiment.objects.count() == 2


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_replays_from_the_page_and_a_merchandiser_reads_the_replay(
    replay_shop, admin_user, merchandiser, django_capture_on_commit_callbacks
):
    source = source_experiment(salt_putting(POPULAR))
    admin = _login(admin_user)
    page = admin.get(f"/dashboard/experiments/{source.pk}/").content.decode()
    assert 'id="experiment-replay-form"' in page

    url = f"/dashboard/experiments/{source.pk}/replay"
    bad = admin.post(url, {"since": "2024-05-01", "days": "5", "k": "2"})
    with django_capture_on_commit_callbacks(execute=True):
        made = admin.post(url, {"since": "2024-06-10", "days": "30", "k": "2"})

    assert bad.status_code == 400
    assert "no event happened before 2024-05-01" in bad.content.decode()
    replay = Experiment.objects.get(replay__isnull=False)
    assert made.status_code == 302
    assert made["Location"] == f"/dashboard/experiments/{replay.pk}/"
    html = _login(merchandiser).get(made["Location"]).content.decode()
    assert 'id="experiment-replay" data-status="done"' in html
    assert "11 visits of 10 customers" in html
    assert 'data-chart="chart-experiment-ctr"' in html
    chart = json.loads(html.split('<script id="chart-experiment-ctr" type="application/json">')[1]
                       .split("</script>")[0])  # fmt: skip
    assert {trace["name"] for trace in chart["data"]} == set(VARIANTS)
    assert 'id="experiment-refresh"' not in html
    assert "8 clicks, carts and purchases recorded by the replay" in html
    assert "9 products the customers touched during their visits that no list showed" in html
    listing = _login(merchandiser).get("/dashboard/experiments/").content.decode()
    assert listing.count('<span class="badge accent">Replay</span>') == 1
    assert replay.name in admin.get(f"/dashboard/experiments/{source.pk}/").content.decode()
