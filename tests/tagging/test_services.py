"""Tagging services with the hashing embedder: vocabulary, auto-tagging runs, decisions."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.choices import JobState
from jobs.services.runs import job_create, job_run
from recommender.models import Customer, Event, Product
from recommender.services.embeddings import product_embeddings_refresh
from tagging.models import ProductTag, ProductTagSource, ProductTagStatus, Tag, TaggingJobKind
from tagging.selectors import customer_interest_tags, tag_precision_estimates
from tagging.services import (
    TagError,
    product_tag_set,
    product_tags_decide,
    tag_create,
    tagging_run,
    tags_import_from_column,
)


def _pending(product: Product) -> list[str]:
    return sorted(
        ProductTag.objects.filter(product=product, status=ProductTagStatus.PENDING).values_list(
            "tag__name", flat=True
        )
    )


def _row(product: Product, tag: str) -> ProductTag:
    return ProductTag.objects.get(product=product, tag__name=tag)


# Vocabulary ---------------------------------------------------------------------------------


def test_creating_a_path_tag_creates_its_parent(db):
    tag = tag_create(name=" Kitchen / Mugs ", description="Cups with handles.")
    assert tag.parent is not None

    assert (tag.name, tag.parent.name, tag.leaf) == ("Kitchen/Mugs", "Kitchen", "Mugs")
    assert tag.description == "Cups with handles."
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Kitchen", "Kitchen/Mugs"]


def test_creating_an_existing_tag_is_refused_naming_the_field(db):
    tag_create(name="kitchen/mugs")

    with pytest.raises(TagError) as refused:
        tag_create(name="kitchen / mugs")

    assert (refused.value.field, refused.value.message) == (
        "name",
        "a tag named 'kitchen/mugs' already exists",
    )


def test_an_empty_tag_name_is_refused(db):
    with pytest.raises(TagError) as refused:
        tag_create(name=" / ")

    assert str(refused.value) == "name: must not be empty"


def test_importing_the_category_column_builds_the_hierarchy_and_can_assign_it(db, admin_user):
    a = Product.objects.create(external_id="a", title="Yogurt", category="dairy eggs/yogurt")
    Product.objects.create(external_id="b", title="Milk", category="dairy eggs/milk")
    Product.objects.create(external_id="c", title="No category")

    counts = tags_import_from_column(column="category", assign=True, user=admin_user)

    assert counts.as_dict() == {"values": 2, "tags_created": 3, "products_tagged": 4}
    parent = Tag.objects.get(name="dairy eggs/milk").parent
    assert parent is not None
    assert parent.name == "dairy eggs"
    row = _row(a, "dairy eggs/yogurt")
    assert (row.status, row.source, row.decided_by) == ("accepted", "import", admin_user)
    again = tags_import_from_column(column="category", assign=True)
    assert again.as_dict() == {"values": 2, "tags_created": 0, "products_tagged": 0}


def test_importing_an_attribute_column_reads_the_attribute(db):
    Product.objects.create(external_id="a", title="Mug", attributes={"type": "mugs"})

    counts = tags_import_from_column(column="type")

    assert counts.as_dict() == {"values": 1, "tags_created": 1, "products_tagged": 0}
    assert list(Tag.objects.values_list("name", flat=True)) == ["mugs"]


# Auto-tagging -------------------------------------------------------------------------------


def test_a_run_suggests_each_product_the_tag_its_title_names(catalogue):
    counts = tagging_run()

    assert (counts.products, counts.tags, counts.suggested, counts.kept_decisions) == (8, 4, 8, 0)
    expected = {
        "p-yog-1": ["dairy/yogurt"],
        "p-yog-2": ["dairy/yogurt"],
        "p-che-1": ["dairy/cheese"],
        "p-che-2": ["dairy/cheese"],
        "p-mug-1": ["kitchen/mugs"],
        "p-mug-2": ["kitchen/mugs"],
        "p-tea-1": ["kitchen/teapots"],
        "p-tea-2": ["kitchen/teapots"],
    }
    assert {pid: _pending(p) for pid, p in catalogue.items()} == expected
    row = _row(catalogue["p-yog-1"], "dairy/yogurt")
    assert (row.source, row.model_version) == ("zero_shot", "hashing-v1-64/zero-shot@t=0.35")
    assert row.confidence == pytest.approx(0.942, abs=0.001)


def test_threshold_and_top_k_bound_the_suggestions(catalogue):
    counts = tagging_run(threshold=0.0, top_k=2)

    assert counts.suggested == 16
    assert _pending(catalogue["p-tea-1"]) == ["kitchen/mugs", "kitchen/teapots"]


def test_merchant_decisions_survive_a_rerun(catalogue, merchandiser):
    tagging_run()
    yogurt = _row(catalogue["p-yog-1"], "dairy/yogurt")
    cheese = _row(catalogue["p-che-1"], "dairy/cheese")
    product_tags_decide(ids=[yogurt.pk], status="accepted", user=merchandiser)
    product_tags_decide(ids=[cheese.pk], status="rejected", user=merchandiser)

    counts = tagging_run()

    assert counts.kept_decisions == 2
    yogurt.refresh_from_db()
    cheese.refresh_from_db()
    assert (yogurt.status, yogurt.decided_by, yogurt.source) == (
        "accepted",
        merchandiser,
        "zero_shot",
    )
    assert (cheese.status, cheese.decided_by) == ("rejected", merchandiser)
    assert ProductTag.objects.filter(status="pending").count() == 6


def test_a_rerun_drops_pending_suggestions_it_no_longer_makes(catalogue):
    tagging_run(threshold=0.0, top_k=2)

    counts = tagging_run()

    assert (counts.suggested, counts.dropped) == (8, 8)
    assert _pending(catalogue["p-tea-1"]) == ["kitchen/teapots"]


def test_only_new_scores_only_products_embedded_since_the_last_run(catalogue):
    job_run(job_id=job_create(kind=TaggingJobKind.TAG, params={}).pk)
    fresh = Product.objects.create(external_id="p-new", title="Vanilla yogurt")
    product_embeddings_refresh()

    counts = tagging_run(only_new=True)

    assert counts.products == 1
    assert _pending(fresh) == ["dairy/yogurt"]


def test_only_new_after_a_job_that_embedded_new_products_scores_none_of_them(catalogue):
    # The job's own embed step embeds these after the job started; its tag step scores them.
    for i in range(3):
        Product.objects.create(external_id=f"p-late-{i}", title=f"Greek yogurt {i}")
    job = job_run(job_id=job_create(kind=TaggingJobKind.TAG, params={}).pk)
    assert (job.counts["embed"]["embedded"], job.counts["tag"]["products"]) == (3, 11)

    counts = tagging_run(only_new=True)

    assert counts.products == 0


def test_accepting_a_leaf_accepts_its_parent_on_the_product(catalogue, merchandiser):
    tagging_run()
    mug = catalogue["p-mug-1"]

    product_tags_decide(ids=[_row(mug, "kitchen/mugs").pk], status="accepted", user=merchandiser)

    parent = _row(mug, "kitchen")
    assert (parent.status, parent.source, parent.decided_by) == (
        "accepted",
        "merchant",
        merchandiser,
    )


def test_deciding_an_unknown_id_is_refused_and_decides_nothing(catalogue):
    tagging_run()
    known = _row(catalogue["p-mug-1"], "kitchen/mugs").pk

    with pytest.raises(TagError) as refused:
        product_tags_decide(ids=[known, 999_999], status="accepted")

    assert str(refused.value) == "ids: no product tag with id 999999"
    assert _row(catalogue["p-mug-1"], "kitchen/mugs").status == "pending"


def test_supervised_tagger_takes_over_tags_where_it_wins_on_held_out_reviews(catalogue, settings):
    settings.RECSITE_TAGGING_SUPERVISED = "logistic"
    # Given 40 reviewed yogurts/cheeses whose titles never name their tag...
    yogurt, cheese = Tag.objects.get(name="dairy/yogurt"), Tag.objects.get(name="dairy/cheese")
    for i in range(20):
        for tag, title in ((yogurt, f"Skyr pot {i} creamy"), (cheese, f"Brie wheel {i} ripe")):
            product = Product.objects.create(external_id=f"s-{tag.pk}-{i}", title=title)
            product_embeddings_refresh()
            product_tag_set(product=product, tag=tag, status="accepted")
    # ...when tagging runs, the supervised tagger learned them.
    counts = tagging_run()

    assert counts.confirmed == 40
    assert counts.supervised_tags == 2
    assert counts.model_version == f"{counts.model_version.split('+')[0]}+logistic@n=40"
    new = Product.objects.create(external_id="s-new", title="Skyr pot creamy")
    product_embeddings_refresh()
    tagging_run(only_new=True)
    row = _row(new, "dairy/yogurt")
    assert (row.status, row.source) == ("pending", "supervised")


def test_an_unknown_supervised_tagger_setting_is_refused_naming_it(catalogue, settings):
    settings.RECSITE_TAGGING_SUPERVISED = "svm"

    with pytest.raises(ValueError, match="^RECSITE_TAGGING_SUPERVISED") as refused:
        tagging_run()

    assert str(refused.value) == (
        "RECSITE_TAGGING_SUPERVISED: expected one of stacked, logistic, finetune, got 'svm'"
    )
    assert ProductTag.objects.count() == 0


def test_precision_estimates_count_reviews_of_suggestions(catalogue, merchandiser):
    tagging_run()
    product_tags_decide(
        ids=[_row(catalogue["p-yog-1"], "dairy/yogurt").pk], status="accepted", user=merchandiser
    )
    product_tags_decide(
        ids=[_row(catalogue["p-yog-2"], "dairy/yogurt").pk], status="rejected", user=merchandiser
    )

    estimates = {e.tag: e for e in tag_precision_estimates()}

    assert (estimates["dairy/yogurt"].accepted, estimates["dairy/yogurt"].rejected) == (1, 1)
    assert estimates["dairy/yogurt"].precision == 0.5
    assert estimates["dairy/cheese"].precision is None
    assert estimates["dairy/cheese"].pending == 2


def test_the_tag_job_embeds_then_tags(catalogue):
    Product.objects.create(external_id="p-late", title="Blue cheese")

    job = job_run(job_id=job_create(kind=TaggingJobKind.TAG, params={"threshold": 0.3}).pk)

    assert job.state == JobState.SUCCEEDED
    assert job.counts["embed"]["embedded"] == 1
    assert (job.counts["tag"]["products"], job.counts["tag"]["suggested"]) == (9, 9)


# Customer interests -------------------------------------------------------------------------


def test_interest_tags_weight_events_by_behaviour_and_recency(catalogue, merchandiser):
    # Given accepted tags and a merchant tag, and a customer's events...
    tagging_run()
    for pid, tag in (("p-yog-1", "dairy/yogurt"), ("p-mug-1", "kitchen/mugs")):
        product_tags_decide(ids=[_row(catalogue[pid], tag).pk], status="accepted")
    Product.objects.filter(external_id="p-mug-1").update(tags=["gift"])
    customer = Customer.objects.create(external_id="c1")
    now = datetime(2024, 1, 15, tzinfo=UTC)
    for i, (pid, event_type, age_days) in enumerate(
        [("p-yog-1", "purchase", 0), ("p-mug-1", "view", 7), ("p-che-1", "view", 0)]
    ):
        Event.objects.create(
            event_id=f"e{i}",
            customer=customer,
            product=catalogue[pid],
            event_type=event_type,
            occurred_at=now - timedelta(days=age_days),
        )

    interests = customer_interest_tags(customer=customer)

    # Default weights: purchase 1.0 ... view 0.1 (see EngineConfig); half-life 7 days, so the
    # week-old view counts half. Total weight = purchase + view/2 + view (untagged cheese).
    from recommender.services.recommendations import engine_config_active

    weights = engine_config_active()[1].behaviour_weights
    purchase, view = weights["purchase"], weights["view"]
    total = purchase + view / 2 + view
    assert [(i.tag, i.events) for i in interests] == [
        ("dairy", 1),
        ("dairy/yogurt", 1),
        ("gift", 1),
        ("kitchen", 1),
        ("kitchen/mugs", 1),
    ]
    assert interests[0].weight == round(purchase / total, 4)
    assert interests[2].weight == round(view / 2 / total, 4)


def test_a_customer_without_events_has_no_interest_tags(db):
    assert customer_interest_tags(customer=Customer.objects.create(external_id="c0")) == []


def test_merchant_source_tags_are_not_in_the_review_queue(catalogue):
    from tagging.selectors import suggestion_queue

    product_tag_set(
        product=catalogue["p-mug-1"], tag=Tag.objects.get(name="kitchen/mugs"), status="accepted"
    )

    assert list(suggestion_queue(status=None)) == []
    assert _row(catalogue["p-mug-1"], "kitchen/mugs").source == ProductTagSource.MERCHANT
