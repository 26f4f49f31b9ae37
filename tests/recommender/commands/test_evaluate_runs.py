"""``manage.py evaluate`` stores each report as an EvaluationRun of the configuration version."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recommender.models import EvaluationRun
from recommender.services.recommendations import recommendation_config_save
from tests.recommender.shop import SHOP_CONFIG

pytestmark = pytest.mark.django_db

MODELS = ["popularity", "item_knn", "ease", "content", "hybrid", "hybrid_defaults"]


def test_evaluate_stores_a_run_of_the_active_version(shop):
    recommendation_config_save(config=SHOP_CONFIG.replace(mmr_lambda=0.8))
    out, err = StringIO(), StringIO()

    call_command("evaluate", "--no-embed", stdout=out, stderr=err)

    run = EvaluationRun.objects.get()
    assert (run.config_version, run.protocol, run.job, run.created_by) == (
        2, "leave-last-out", None, None,
    )  # fmt: skip
    assert sorted(run.metrics) == sorted(MODELS)
    assert run.metrics["hybrid"]["recall@10"] == 1.0
    assert run.dataset == {"customers": 2, "products": 8, "events": 17, "ks": [10, 20]}
    assert f"Stored evaluation run {run.pk} (config v2)." in err.getvalue()
    assert "| hybrid | 1.0000 |" in out.getvalue()


def test_a_config_file_equal_to_a_saved_version_is_stored_as_that_version(shop, tmp_path):
    recommendation_config_save(config=SHOP_CONFIG.replace(mmr_lambda=0.8))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SHOP_CONFIG.to_dict()))

    call_command(
        "evaluate", "--no-embed", "--cold-start", "--config", str(path),
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip

    runs = EvaluationRun.objects.order_by("pk")
    assert [(r.config_version, r.protocol) for r in runs] == [
        (1, "leave-last-out"), (1, "cold-start"),
    ]  # fmt: skip


def test_a_config_file_of_no_saved_version_is_not_stored(shop, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SHOP_CONFIG.replace(ease_lambda=7.0).to_dict()))
    err = StringIO()

    call_command("evaluate", "--no-embed", "--config", str(path), stdout=StringIO(), stderr=err)

    assert EvaluationRun.objects.count() == 0
    assert "Not stored: --config equals no saved configuration version." in err.getvalue()


def test_a_sample_run_scores_that_many_customers_and_if_missing_skips_a_second(shop):
    call_command("evaluate", "--no-embed", "--sample", "1", stdout=StringIO(), stderr=StringIO())
    out = StringIO()

    call_command("evaluate", "--no-embed", "--if-missing", stdout=out, stderr=StringIO())

    run = EvaluationRun.objects.get()
    assert (run.dataset["customers"], run.dataset["sample"], run.dataset["eligible"]) == (1, 1, 2)
    assert out.getvalue() == "Configuration v1 already has an evaluation run.\n"


def test_a_sample_with_the_cold_start_protocol_is_refused():
    with pytest.raises(CommandError, match=r"^--sample: expected an integer >= 1, without"):
        call_command("evaluate", "--sample", "5", "--cold-start", stdout=StringIO())
