"""The tuning page (preview, save, versions, restore) and the evaluation page (test client)."""

import json
import re

import pytest

from jobs.choices import JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.dashboard.tuning import TuningForm
from recommender.models import EvaluationRun, RecommendationConfig
from recommender.services import tuning
from recommender.services.recommendations import recommendation_config_save
from tests.recommender.shop import SHOP_CONFIG

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_sample():
    tuning.tuning_sample_reset()
    yield
    tuning.tuning_sample_reset()


def form_data(config=SHOP_CONFIG, **changes):
    """The tuning form as the page posts it, with ``changes`` typed over the values."""
    data: dict[str, object] = {}
    for name, value in TuningForm.initial_for(config).items():
        if value is None:
            data[name] = ""
        elif isinstance(value, list):
            data[name] = value
        else:
            data[name] = str(value)
    data.update({"customers": "C4", "note": ""})
    data.update(changes)
    return data


def field_errors(html, name):
    """The messages in one field's error slot on the page."""
    match = re.search(rf'<div class="field-errors" id="errors-{name}">(.*?)</div>', html, re.S)
    assert match, f"no field {name}"
    return re.findall(r"<li>(.*?)</li>", match.group(1))


def preview_lists(html, customer):
    block = re.search(rf'data-customer="{customer}">(.*?)</div>\s*</div>\s*</div>', html, re.S)
    assert block, f"no preview for {customer}"
    before, after = re.findall(
        r'<ol class="preview-list (?:before|after)">(.*?)</ol>', block.group(1), re.S
    )
    return re.findall(r'data-product="([^"]+)"', before), re.findall(
        r'data-product="([^"]+)"', after
    )


def test_the_tuning_page_shows_the_active_version_and_the_most_active_customers(
    client, merchandiser, shop
):
    client.force_login(merchandiser)

    response = client.get("/dashboard/tuning/")

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'name="w_popularity" value="0.2"', html)
    assert re.search(r'name="half_life_days" value="30.0"', html)
    assert re.search(r'name="customers" value="C2, C5, C1"', html)
    assert 'id="active-version">v1<' in html
    assert 'data-live-url="/dashboard/tuning/preview"' in html


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in ("/dashboard/tuning/", "/dashboard/evaluation/", "/dashboard/tuning/versions/"):
        response = client.get(url)
        assert (response.status_code, response.url) == (302, f"/accounts/login/?next={url}")


def test_the_preview_fragment_shows_before_and_after(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/preview", form_data(w_popularity="3"))

    html = response.content.decode()
    assert response.status_code == 200
    before, after = preview_lists(html, "C4")
    assert before == ["MUG-2", "LAMP-1", "LAMP-2", "INK-2", "INK-3", "INK-1"]
    assert after == ["LAMP-1", "MUG-2", "LAMP-2", "INK-2", "INK-3", "INK-1"]
    row = re.search(r'data-metric="ndcg@10">(.*?)</tr>', html, re.S)
    assert row is not None
    ndcg = row.group(1)
    assert re.findall(r'<td class="num[^"]*">([^<]+)</td>', ndcg) == ["1.0000", "0.6309", "-0.3691"]
    assert RecommendationConfig.objects.count() == 1


def test_the_preview_of_bad_input_names_the_field_and_answers_200(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/preview", form_data(half_life_days="0"))

    html = response.content.decode()
    assert response.status_code == 200
    assert re.findall(r'<li data-error-for="([^"]+)">([^<]+)</li>', html) == [
        ("half_life_days", "half_life_days: expected a number &gt; 0, got 0.0"),
    ]
    assert "preview-list" not in html


def test_saving_creates_a_new_active_version(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/", form_data(mmr_lambda="0.7", note="more variety"))

    assert (response.status_code, response.url) == (302, "/dashboard/tuning/")
    saved = RecommendationConfig.objects.get(is_active=True)
    assert (saved.version, saved.note, saved.created_by) == (2, "more variety", merchandiser)
    assert saved.config == SHOP_CONFIG.replace(mmr_lambda=0.7).to_dict()
    page = client.get("/dashboard/tuning/").content.decode()
    assert "Saved configuration version 2; it serves now." in page
    assert '<li class="mono">mmr_lambda: 1 → 0.7</li>' in page


def test_the_exposure_slots_are_saved_from_their_fields(client, merchandiser, shop):
    client.force_login(merchandiser)
    page = client.get("/dashboard/tuning/").content.decode()
    assert 'name="exposure_slots"' in page
    assert 'data-slider="0:5:1"' in page  # A slider beside the number.

    response = client.post(
        "/dashboard/tuning/", form_data(exposure_slots="2", exposure_min_score="0.8")
    )

    assert (response.status_code, response.url) == (302, "/dashboard/tuning/")
    saved = RecommendationConfig.objects.get(is_active=True)
    assert saved.config == SHOP_CONFIG.replace(exposure_slots=2, exposure_min_score=0.8).to_dict()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"w_popularity": "-1"},
            "w_popularity",
            "Ensure this value is greater than or equal to 0.",
        ),
        ({"b_view": "-0.5"}, "b_view", "Ensure this value is greater than or equal to 0."),
        ({"mmr_lambda": "1.5"}, "mmr_lambda", "Ensure this value is less than or equal to 1."),
        ({"half_life_days": "0"}, "half_life_days", "expected a number &gt; 0, got 0.0"),
        ({"half_life_days": "-3"}, "half_life_days", "expected a number &gt; 0, got -3.0"),
        ({"ease_lambda": "abc"}, "ease_lambda", "Enter a number."),
        ({"customers": "C4, NOPE"}, "customers", "Unknown customer id(s): NOPE."),
        (
            {"exposure_slots": "6"},
            "exposure_slots",
            "Ensure this value is less than or equal to 5.",
        ),
        ({"exposure_slots": "1.5"}, "exposure_slots", "Enter a whole number."),
        (
            {"exposure_min_score": "2.5"},
            "exposure_min_score",
            "Ensure this value is less than or equal to 2.",
        ),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_saved(
    client, merchandiser, shop, changes, field, message
):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/", form_data(**changes))

    assert response.status_code == 200
    assert field_errors(response.content.decode(), field) == [message]
    assert list(RecommendationConfig.objects.values_list("version", flat=True)) == [1]


def test_restoring_an_old_version_creates_a_new_one(client, merchandiser, shop):
    recommendation_config_save(config=SHOP_CONFIG.replace(mmr_lambda=0.5), note="x")
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/versions/1/restore", {"next": "versions"})

    assert (response.status_code, response.url) == (302, "/dashboard/tuning/versions/")
    restored = RecommendationConfig.objects.get(is_active=True)
    assert (restored.version, restored.note) == (3, "restored from version 1")
    assert restored.config == SHOP_CONFIG.to_dict()
    page = client.get("/dashboard/tuning/versions/").content.decode()
    assert "Restored version 1 as version 3; it serves now." in page
    assert re.findall(r'<tr data-version="(\d+)">', page) == ["3", "2", "1"]


def test_restoring_an_unknown_version_says_so(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/versions/9/restore", follow=True)

    assert "version: no recommendation configuration has version 9" in response.content.decode()
    assert RecommendationConfig.objects.count() == 1


def test_restore_needs_a_post(client, merchandiser, shop):
    client.force_login(merchandiser)

    assert client.get("/dashboard/tuning/versions/1/restore").status_code == 405


# Evaluation -------------------------------------------------------------------------------------


def _run(version, recall, **extra):
    return EvaluationRun.objects.create(
        config_version=version,
        metrics={
            "hybrid": {"recall@10": recall, "ndcg@10": 0.1, "coverage@10": 0.2, "ild@10": 0.6},
            "ease": {"recall@10": 0.2, "ndcg@10": 0.09, "coverage@10": 0.1, "ild@10": 0.5},
        },
        dataset={"customers": 300, "eligible": 4000},
        seconds=12.5,
        **extra,
    )


def chart(html, chart_id):
    match = re.search(
        rf'<script id="{chart_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no chart {chart_id}"
    return json.loads(match.group(1))


def test_the_evaluation_page_charts_each_method_per_run(client, merchandiser):
    _run(1, 0.25)
    _run(2, 0.27)
    client.force_login(merchandiser)

    html = client.get("/dashboard/evaluation/").content.decode()

    spec = chart(html, "chart-eval-0")
    recall = [t for t in spec["data"] if t["xaxis"] == "x"]
    assert [(t["name"], t["y"], t["text"]) for t in recall] == [
        ("hybrid", [0.25, 0.27], ["v1", "v2"]),
        ("ease", [0.2, 0.2], ["v1", "v2"]),
    ]
    assert len(spec["data"]) == 8  # Two methods x four metrics.
    assert '<div class="chart" data-chart="chart-eval-0"' in html
    versions = r'<tr data-run="\d+">\s*<td[^>]*>[^<]*</td>\s*<td class="num">(v\d)</td>'
    assert re.findall(versions, html) == ["v2", "v1"]
    assert "Run evaluation" not in html  # Admins only.


def test_the_evaluation_page_without_runs_says_so(client, admin_user):
    client.force_login(admin_user)

    html = client.get("/dashboard/evaluation/").content.decode()

    assert "No evaluation runs yet: run one with the button above." in html
    assert "Run evaluation" in html


def test_only_admins_start_an_evaluation_from_the_page(client, merchandiser):
    client.force_login(merchandiser)

    assert client.post("/dashboard/evaluation/run").status_code == 403
    assert Job.objects.count() == 0


def test_an_admin_runs_an_evaluation_of_the_active_version(
    client, admin_user, shop, django_capture_on_commit_callbacks
):
    recommendation_config_save(config=SHOP_CONFIG.replace(mmr_lambda=0.9), note="x")
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/dashboard/evaluation/run")

    assert (response.status_code, response.url) == (302, "/dashboard/evaluation/")
    job = Job.objects.get()
    assert (job.kind, job.state, job.triggered_by) == (
        JobKind.EVALUATE,
        JobState.SUCCEEDED,
        admin_user,
    )
    run = EvaluationRun.objects.get()
    assert (run.config_version, run.protocol, run.job, run.created_by) == (
        2, "leave-last-out", job, admin_user,
    )  # fmt: skip
    assert sorted(run.metrics) == ["content", "ease", "hybrid", "item_knn", "popularity"]
    assert run.dataset == {
        "customers": 2, "products": 8, "events": 17, "ks": [10, 20], "sample": 2,
        "eligible": 2, "seed": 0,
    }  # fmt: skip
    assert job.counts["evaluation_run"] == run.pk
    assert job.counts["config_version"] == 2


def test_without_a_fitted_engine_the_page_and_the_preview_say_so(client, merchandiser):
    client.force_login(merchandiser)

    page = client.get("/dashboard/tuning/")
    preview = client.get("/dashboard/tuning/preview")

    assert page.status_code == 200
    assert "No engine has been fitted yet: the preview needs one" in page.content.decode()
    assert preview.status_code == 200
    assert "No recommendation engine has been fitted yet" in preview.content.decode()


def test_a_running_evaluation_shows_a_progress_bar_to_admins_and_its_state_to_others(
    client, merchandiser, admin_user
):
    job = Job.objects.create(kind=JobKind.EVALUATE, state=JobState.RUNNING, progress=40)

    client.force_login(merchandiser)
    merch_page = client.get("/dashboard/evaluation/").content.decode()
    client.force_login(admin_user)
    admin_page = client.get("/dashboard/evaluation/").content.decode()

    # The jobs API is for admins: a merchandiser's page must not poll it.
    assert "data-poll-url" not in merch_page
    assert "<p>Running (started by an admin)." in merch_page
    assert f'data-poll-url="/api/v1/jobs/{job.pk}/"' in admin_page


def test_locks_are_saved_with_the_version_and_shown_ticked(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post(
        "/dashboard/tuning/",
        form_data(locked=["half_life_days", "source_weights.semantic"], note="locks"),
    )

    assert response.status_code == 302
    saved = RecommendationConfig.objects.get(is_active=True)
    assert saved.locked == ["half_life_days", "source_weights.semantic"]
    page = client.get("/dashboard/tuning/").content.decode()
    ticked = re.findall(r'<input type="checkbox" name="locked" value="([^"]+)"[^>]*checked', page)
    assert ticked == ["source_weights.semantic", "half_life_days"]


def test_a_lock_that_is_not_a_tuned_setting_is_refused(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/", form_data(locked=["mmr_lambda"]))

    assert response.status_code == 200
    assert field_errors(response.content.decode(), "locked") == [
        "Select a valid choice. mmr_lambda is not one of the available choices."
    ]
    assert RecommendationConfig.objects.get(is_active=True).version == 1


def test_a_version_tuned_automatically_says_so_with_its_validation_gain(client, merchandiser, shop):
    recommendation_config_save(
        config=SHOP_CONFIG.replace(half_life_days=7.0),
        note="tuned automatically, +4.2% NDCG@10 on validation",
        tuning={
            "best_ndcg": 0.1607,
            "active_ndcg": 0.15426,
            "users": 3000,
            "points": 1690,
            "seconds": 49.2,
            "replaced_version": 1,
            "locked": ["n_interests"],
        },
    )
    client.force_login(merchandiser)

    page = client.get("/dashboard/tuning/").content.decode()

    banner = re.search(r'<p class="message info" id="autotune-banner">(.*?)</p>', page, re.S)
    assert banner
    text = " ".join(re.sub(r"<[^>]+>", "", banner.group(1)).split())
    assert text == (
        "Tuned automatically: v2 scored 0.1607 NDCG@10 on the shop's own validation split "
        "against v1's 0.1543 (3000 customers, 1690 points searched in 49 s); locked: n_interests."
    )


# Rotation -----------------------------------------------------------------------------------


def test_rotation_is_saved_per_list_and_the_history_says_what_changed(client, merchandiser, shop):
    client.force_login(merchandiser)
    page = client.get("/dashboard/tuning/").content.decode()

    response = client.post(
        "/dashboard/tuning/",
        form_data(rot_customer_rate="0.3", rot_customer_hours="12", rot_customer_min="2",
                  rot_similar_rate="0.5", rot_similar_hours="", rot_similar_min=""),
    )  # fmt: skip

    assert '<details id="rotation">' in page  # Off everywhere: folded.
    assert re.search(r'name="rot_customer_rate" value="0.0"', page)
    assert response.status_code == 302
    saved = RecommendationConfig.objects.get(is_active=True)
    assert saved.config["rotation"] == {
        "customer": {"rate": 0.3, "hours": 12.0, "min_impressions": 2},
        # Empty inputs take the defaults.
        "similar": {"rate": 0.5, "hours": 24.0, "min_impressions": 3},
    }
    after = client.get("/dashboard/tuning/").content.decode()
    assert '<details id="rotation" open>' in after
    assert re.search(r'name="rot_customer_rate" value="0.3"', after)
    assert (
        '<li class="mono">rotation.customer: none → rate 0.3, hours 12, min_impressions 2</li>'
        in after
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"rot_customer_rate": "0.5", "rot_customer_min": "0"}, "rot_customer_min",
         "expected an integer from 1 to 20, got 0"),
        ({"rot_trending_rate": "0.5", "rot_trending_hours": "1000"}, "rot_trending_hours",
         "expected a number above 0 and at most 720, got 1000.0"),
        ({"rot_session_rate": "2"}, "rot_session_rate",
         "Ensure this value is less than or equal to 1."),
    ],
)  # fmt: skip
def test_a_bad_rotation_is_refused_next_to_its_field(client, merchandiser, shop, changes, field,
                                                     message):  # fmt: skip
    client.force_login(merchandiser)

    response = client.post("/dashboard/tuning/", form_data(**changes))

    assert response.status_code == 200
    assert field_errors(response.content.decode(), field) == [message]
    assert list(RecommendationConfig.objects.values_list("version", flat=True)) == [1]


def test_the_preview_shows_rotation_from_the_customers_real_impressions(client, merchandiser,
                                                                        shop):  # fmt: skip
    from recommender.models import Customer, RecommendationLog

    client.force_login(merchandiser)
    before, _ = preview_lists(
        client.post("/dashboard/tuning/preview", form_data()).content.decode(), "C4"
    )
    # C4 was shown their first product 3 times.
    for _ in range(3):
        RecommendationLog.objects.create(
            kind="customer", customer=Customer.objects.get(external_id="C4"),
            product_ids=[before[0]],
        )  # fmt: skip

    response = client.post("/dashboard/tuning/preview", form_data(rot_customer_rate="1"))

    # Rate 1 takes its score to 0: it goes last; the active configuration has no rotation.
    assert preview_lists(response.content.decode(), "C4") == (before, [*before[1:], before[0]])
    assert len(before) > 2


def test_a_version_saved_for_an_experiment_does_not_serve(client, merchandiser, shop):
    from recommender.services.recommendations import serving_engine

    client.force_login(merchandiser)

    response = client.post(
        "/dashboard/tuning/", form_data(rot_customer_rate="0.5", note="rotation", serve="no")
    )

    assert response.status_code == 302
    versions = dict(RecommendationConfig.objects.values_list("version", "is_active"))
    assert versions == {1: True, 2: False}
    assert RecommendationConfig.objects.get(version=2).config["rotation"] == {
        "customer": {"rate": 0.5, "hours": 24.0, "min_impressions": 3}
    }
    assert serving_engine().config_version == 1
    page = client.get("/dashboard/tuning/").content.decode()
    assert (
        "Saved configuration version 2 for experiments; version 1 still serves. Name version 2 "
        "as a variant&#x27;s config_version to test it." in page
    )
