"""manage.py tag_products and evaluate_tagging (hashing embedder)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.choices import JobState
from jobs.models import Job
from recommender.models import Product
from tagging.models import ProductTag, TaggingJobKind


def test_tag_products_runs_a_job_and_reports_it(catalogue):
    out = StringIO()

    call_command("tag_products", "--no-progress", "--top-k", "1", stdout=out)

    job = Job.objects.get(kind=TaggingJobKind.TAG)
    assert job.state == JobState.SUCCEEDED
    assert job.params == {
        "only_new": False,
        "threshold": 0.3,
        "top_k": 1,
        "source": "manage.py tag_products",
    }
    assert ProductTag.objects.filter(status="pending").count() == 8
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Embedded 0 products in {job.counts['embed']['seconds']:.1f} s."
    assert lines[1].startswith("Tagged 8 products against 4 tags in ")
    assert lines[1].endswith(
        ": 8 suggestions pending review, 0 merchant decisions kept, 0 stale suggestions "
        "dropped (hashing-v1-64/zero-shot@t=0.35)."
    )


def test_tag_products_refuses_a_bad_threshold(db):
    with pytest.raises(CommandError, match="--threshold: must be within 0 and 1"):
        call_command("tag_products", "--threshold", "2")
    assert Job.objects.count() == 0


def test_evaluate_tagging_writes_every_method_and_the_examples_per_class(db, tmp_path):
    words = {"dairy/yogurt": "yogurt", "dairy/cheese": "cheese", "kitchen/mugs": "mug"}
    for label, word in words.items():
        for i in range(10):
            Product.objects.create(
                external_id=f"{word}-{i}", title=f"{word} number {i}", category=label
            )
    report_path = tmp_path / "report.json"
    out = StringIO()

    call_command(
        "evaluate_tagging",
        "--labels-column=category",
        "--test-size=0.2",
        "--seed=0",
        "--methods=zero_shot,logistic,knn,tfidf_lr",
        "--c-grid=4",
        "--k-grid=3,5",
        f"--json={report_path}",
        "--no-progress",
        stdout=out,
        stderr=StringIO(),
    )

    report = json.loads(report_path.read_text())
    assert sorted(report["methods"]) == [
        "knn",
        "logistic",
        "tfidf_lr",
        "zero_shot",
        "zero_shot_raw_cosine",
    ]
    assert report["methods"]["logistic"]["accuracy"] == 1.0
    assert report["hyperparameters"]["logistic"] == {"C": 4.0}
    assert report["hyperparameters"]["knn"]["k"] in (3, 5)
    assert report["methods"]["zero_shot"]["accuracy"] == 1.0
    assert report["split"] | {"validation_within_train": None} == {
        "train": 24,
        "test": 6,
        "validation_within_train": None,
        "classes": 3,
        "test_size": 0.2,
        "seed": 0,
    }
    assert report["train_examples_per_class"]["by_class"] == {
        "dairy/cheese": 8,
        "dairy/yogurt": 8,
        "kitchen/mugs": 8,
    }
    assert report["dataset"]["products"] == 30
    text = out.getvalue()
    assert "labelled training examples per class: min 8, median 8, max 8" in text
    assert "zero-shot (tag text vs product text)" in text


def test_evaluate_tagging_at_level_one_scores_the_department(db, tmp_path):
    for i in range(6):
        Product.objects.create(external_id=f"y{i}", title=f"yogurt {i}", category="dairy/yogurt")
        Product.objects.create(external_id=f"m{i}", title=f"mug {i}", category="kitchen/mugs")
    report_path = tmp_path / "report.json"

    call_command(
        "evaluate_tagging",
        "--level=1",
        "--methods=zero_shot",
        f"--json={report_path}",
        "--no-progress",
        stdout=StringIO(),
        stderr=StringIO(),
    )

    report = json.loads(report_path.read_text())
    assert sorted(report["train_examples_per_class"]["by_class"]) == ["dairy", "kitchen"]


def test_evaluate_tagging_without_labels_fails_clearly(db):
    Product.objects.create(external_id="a", title="Mug")

    with pytest.raises(CommandError, match="no active product has a value in the label column"):
        call_command("evaluate_tagging", "--no-progress", stdout=StringIO(), stderr=StringIO())


def test_evaluate_tagging_refuses_a_grid_that_is_not_numbers(db):
    with pytest.raises(CommandError, match="--c-grid: expected numbers"):
        call_command("evaluate_tagging", "--c-grid=ten", stdout=StringIO(), stderr=StringIO())
