"""manage.py evaluate_churn and score_churn."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from churn.models import ChurnScore

pytestmark = pytest.mark.django_db


def test_evaluate_churn_prints_and_writes_the_three_methods(churn_shop, tmp_path):
    out = StringIO()
    target = tmp_path / "churn.json"

    call_command(
        "evaluate_churn", "--cutoff", "2024-07-26", "--horizon", "30", "--json", str(target),
        stdout=out,
    )  # fmt: skip

    result = json.loads(target.read_text())
    assert set(result["methods"]) == {"model", "bgnbd", "rfm_logreg"}
    assert result["history_until"] == "2024-07-27T00:00:00+00:00"
    assert result["label_window"] == ["2024-07-27T00:00:00+00:00", "2024-08-26T00:00:00+00:00"]
    # Every training label window ends by the cutoff.
    assert max(result["training_cutoffs"]) == "2024-06-27T00:00:00+00:00"
    lines = out.getvalue().splitlines()
    assert lines[1].split() == ["method", "ROC", "AUC", "PR", "AUC", "Brier"]
    model = result["methods"]["model"]
    assert lines[2] == (
        f"{'Gradient boosting (calibrated)':34} {model['roc_auc']:8.4f} {model['pr_auc']:8.4f} "
        f"{model['brier']:8.4f}"
    )
    assert lines[-1] == f"written to {target}"


def test_evaluate_churn_refuses_a_horizon_past_the_data(churn_shop):
    with pytest.raises(CommandError, match="labels would be incomplete"):
        call_command("evaluate_churn", "--cutoff", "2024-08-10", "--horizon", "30")


def test_score_churn_trains_scores_and_shows_progress(churn_shop):
    out, err = StringIO(), StringIO()

    call_command("score_churn", stdout=out, stderr=err)

    assert ChurnScore.objects.count() == 162
    version = ChurnScore.objects.values_list("model_version", flat=True).first()
    bands = {
        band: ChurnScore.objects.filter(band=band).count() for band in ("low", "medium", "high")
    }
    assert out.getvalue().startswith(
        f"Model {version} (trained); 162 customers scored as of 2024-08-27T00:00:00+00:00 in "
    )
    assert (
        out.getvalue()
        .rstrip()
        .endswith(f"{bands['low']} low, {bands['medium']} medium, {bands['high']} high")
    )
    assert "100/100" in err.getvalue()
