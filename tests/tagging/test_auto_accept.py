"""Calibrated auto-accept in tagging runs (hashing embedder): thresholds from held-out
reviews, precision on products with known tags, and merchants' decisions always winning."""

import pytest
from django.test import Client

from jobs.choices import JobState
from jobs.services.runs import job_create, job_run
from recommender.models import Product
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from tagging.models import ProductTag, ProductTagSource, ProductTagStatus, Tag, TaggingJobKind
from tagging.selectors import tag_precision_estimates
from tagging.services import product_tags_decide, tag_ensure, tagging_run

WORDS = {
    "dairy/yogurt": "yogurt",
    "dairy/cheese": "cheese",
    "kitchen/mugs": "mug",
    "kitchen/teapots": "teapot",
}


@pytest.fixture
def reviewed(db, merchandiser) -> dict[str, str]:
    """150 reviewed products per tag whose titles name it, decided by a merchant, and 10 new
    products per tag from the same distribution; returns {external id: true tag} of the new."""
    get_embedder.cache_clear()
    tags = {name: tag_ensure(name=name)[0] for name in WORDS}
    rows = []
    for name, word in WORDS.items():
        for i in range(150):
            product = Product.objects.create(external_id=f"r-{word}-{i}", title=f"{word} pack {i}")
            rows.append(
                ProductTag(product=product, tag=tags[name], source=ProductTagSource.ZERO_SHOT)
            )
    ProductTag.objects.bulk_create(rows)
    product_tags_decide(ids=[r.pk for r in rows], status="accepted", user=merchandiser)
    truth = {}
    for name, word in WORDS.items():
        for i in range(10):
            Product.objects.create(external_id=f"n-{word}-{i}", title=f"{word} pack new {i}")
            truth[f"n-{word}-{i}"] = name
    product_embeddings_refresh()
    return truth


def _auto_accepted() -> dict[str, str]:
    return dict(
        ProductTag.objects.filter(decided_by_model=True).values_list(
            "product__external_id", "tag__name"
        )
    )


def test_confident_suggestions_are_auto_accepted_at_the_target_precision(reviewed):
    counts = tagging_run(top_k=1)

    auto = _auto_accepted()
    new = {pid: tag for pid, tag in auto.items() if pid.startswith("n-")}
    assert counts.target_precision == 0.95
    assert counts.auto_accept_global is not None
    # The stacked tagger is sure of all 40 new products (and right).
    assert counts.auto_accepted == len(auto) == len(new) == 40
    # 30 held-out reviews per tag, all right, do not show 95% on their own (Wilson lower bound
    # 0.92); the 90 together do (0.97), so each tag takes the global threshold. On the new
    # products with known tags, every auto-accepted tag is right.
    assert {
        name: (c["own"], c["support"], c["precision"])
        for name, c in counts.auto_accept.items()
        if name in WORDS
    } == dict.fromkeys(WORDS, (False, 30, 1.0))
    assert new == {pid: reviewed[pid] for pid in new}
    row = ProductTag.objects.get(product__external_id=min(new), tag__name=new[min(new)])
    assert (row.status, row.auto_accepted, row.decided_by, row.decided_at is not None) == (
        "accepted",
        True,
        None,
        True,
    )


def test_auto_accept_never_overrides_a_rejected_suggestion(reviewed, merchandiser):
    tagging_run(top_k=1)
    row = ProductTag.objects.get(product__external_id="n-cheese-3", tag__name="dairy/cheese")
    # A merchant rejects an auto-accepted tag (they know better: it is a cheese-shaped candle).
    product_tags_decide(ids=[row.pk], status="rejected", user=merchandiser)

    counts = tagging_run(top_k=1)

    row.refresh_from_db()
    assert (row.status, row.decided_by, row.decided_by_model) == ("rejected", merchandiser, False)
    assert row.auto_accepted  # The record that auto-accept had accepted it stays.
    assert counts.kept_decisions >= 1
    cheese = {p.tag: p for p in tag_precision_estimates()}["dairy/cheese"]
    # 1 audited and rejected: auto-accept's measured precision on cheese is 0 of 1.
    assert (cheese.audited_kept, cheese.audited_rejected, cheese.auto_accept_precision) == (
        0,
        1,
        0.0,
    )


def test_rejected_before_the_run_stays_rejected_however_confident(reviewed, merchandiser):
    product = Product.objects.get(external_id="n-yogurt-1")
    row = ProductTag.objects.create(
        product=product, tag=Tag.objects.get(name="dairy/yogurt"), source="zero_shot"
    )
    product_tags_decide(ids=[row.pk], status="rejected", user=merchandiser)

    tagging_run(top_k=1)

    row.refresh_from_db()
    assert (row.status, row.decided_by_model, row.auto_accepted) == ("rejected", False, False)
    assert "n-yogurt-1" not in _auto_accepted()


def test_auto_accepted_rows_are_not_learned_from(reviewed):
    counts = tagging_run(top_k=1)
    again = tagging_run(top_k=1)

    # 600 merchant reviews both times: the run's own acceptances never become training data.
    assert counts.confirmed == again.confirmed == 600
    assert again.auto_accepted == counts.auto_accepted


def test_without_enough_reviews_nothing_is_auto_accepted(catalogue):
    # The catalogue fixture: tags and products, no review.
    counts = tagging_run()

    assert counts.auto_accept_global is None
    assert counts.auto_accepted == 0
    assert not ProductTag.objects.filter(status=ProductTagStatus.ACCEPTED).exists()


def test_a_target_of_zero_switches_auto_accept_off(reviewed, settings):
    settings.RECSITE_TAGGING_TARGET_PRECISION = 0.0

    counts = tagging_run(top_k=1)

    assert counts.auto_accepted == 0
    assert _auto_accepted() == {}


def test_the_review_page_shows_per_tag_auto_accept_precision_and_waiting(reviewed, merchandiser):
    job = job_run(job_id=job_create(kind=TaggingJobKind.TAG, params={"top_k": 1}).pk)
    assert job.state == JobState.SUCCEEDED
    row = ProductTag.objects.get(product__external_id="n-mug-2", tag__name="kitchen/mugs")
    product_tags_decide(ids=[row.pk], status="accepted", user=merchandiser)
    client = Client()
    client.force_login(merchandiser)

    response = client.get("/dashboard/tags/")

    assert response.status_code == 200
    mugs = {p.tag: p for p in response.context["precision"]}["kitchen/mugs"]
    # All 10 new mugs auto-accepted, 1 of them then kept by a merchant; none waits.
    assert (mugs.auto_accepted, mugs.audited_kept, mugs.auto_accept_precision) == (9, 1, 1.0)
    assert mugs.pending == 0
    assert mugs.threshold == job.counts["tag"]["auto_accept"]["kitchen/mugs"]["threshold"]
    assert mugs.held_out_precision == 1.0
    html = response.content.decode()
    assert '<td class="num" data-kept>1.00 (1 of 1)</td>' in html
    assert f'<td class="num" data-waiting>{mugs.pending}</td>' in html


def test_the_weighted_stack_ships_when_the_meta_learner_does_not_beat_it(reviewed, monkeypatch):
    # Every member is right on every held-out review: the meta-learner ties, so it is not used.
    monkeypatch.setattr("tagging.services.taggers.META_MIN_HELD", 0)

    counts = tagging_run(top_k=1)

    assert counts.stacker == "weighted"
    assert "+stacked(" in counts.model_version


def test_the_meta_learner_stack_ships_with_thresholds_from_out_of_fold_scores(
    reviewed, monkeypatch
):
    from tagging import ml

    def always(held_proba, truth, blended, n_tags, seed):
        return ml.cross_fit_meta(held_proba, truth, n_tags=n_tags, seed=seed)

    monkeypatch.setattr("tagging.services.taggers._meta_stacker", always)

    counts = tagging_run(top_k=1)

    assert counts.stacker == "meta_lr"
    assert counts.model_version.split("+", 1)[1] == (
        "stacked_lr(zero_shot;logistic;knn;tfidf_lr;l2=inf)@n=600"
    )
    new = {pid: tag for pid, tag in _auto_accepted().items() if pid.startswith("n-")}
    assert new == reviewed


def test_the_meta_learner_replaces_the_weighted_stack_only_with_enough_reviews_and_a_win():
    import numpy as np

    from tagging.services.taggers import META_MIN_HELD, _meta_stacker

    pattern = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.6, 0.0, 0.4]])

    def held(per_tag: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        truth = np.repeat(np.arange(3), per_tag)
        return {"biased": pattern[truth], "flat": np.full((len(truth), 3), 1 / 3)}, truth

    # The weighted average can only copy the member (2/3 right); out of fold the meta-learner
    # is right on every row: it ships.
    probas, truth = held(70)
    assert len(truth) >= META_MIN_HELD
    chosen = _meta_stacker(probas, truth, probas["biased"], 3, 0)
    assert chosen is not None
    assert np.argmax(chosen[1], axis=1).tolist() == truth.tolist()
    # The same win on fewer held-out reviews than META_MIN_HELD is not tried.
    probas, truth = held(10)
    assert _meta_stacker(probas, truth, probas["biased"], 3, 0) is None
    # A weighted average already right everywhere is kept.
    probas, truth = held(70)
    assert _meta_stacker(probas, truth, np.eye(3)[truth], 3, 0) is None
