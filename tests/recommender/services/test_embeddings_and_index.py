"""Embedding sweep, index builds and serving, with the weight-free hashing embedder.

The real model runs in tests/integration/test_real_model.py.
"""

from decimal import Decimal

import numpy as np
import pytest

from jobs.choices import BuildStatus
from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import EXACT_SEARCH_MAX
from recommender.models import IndexBuild, Product, ProductEmbedding
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.index import (
    index_build_latest_ready,
    index_build_rollback,
    serving_index,
    serving_index_search,
    validation_search,
    vector_index_build,
)
from recommender.services.ingestion import products_upsert
from recommender.services.search import product_search, product_semantic_neighbours

pytestmark = pytest.mark.django_db

CATALOGUE = [
    ProductRecord("INK-1", "HP 78 tri-colour printer ink cartridge", category="Office"),
    ProductRecord("INK-2", "Canon black printer ink cartridge", category="Office"),
    ProductRecord("MUG-1", "White ceramic coffee mug", category="Kitchen"),
    ProductRecord("MUG-2", "Blue enamel coffee mug", category="Kitchen"),
    ProductRecord("LAMP-1", "White hanging heart t-light holder", category="Home"),
]


@pytest.fixture(autouse=True)
def fresh_index(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    from recommender.services import index

    index.serving_index_reset()
    yield
    index.serving_index_reset()


def _ids(pairs):
    return [product.external_id for product, _ in pairs]


def test_refresh_embeds_every_new_product_once():
    products_upsert(records=CATALOGUE)

    first = product_embeddings_refresh()
    second = product_embeddings_refresh()

    assert (first.products, first.embedded, first.unchanged) == (5, 5, 0)
    assert (second.products, second.embedded, second.unchanged) == (0, 0, 0)
    assert ProductEmbedding.objects.count() == 5
    assert Product.objects.filter(embedding_stale=True).count() == 0
    stored = ProductEmbedding.objects.get(product__external_id="MUG-1")
    assert stored.model_name == "hashing-v1-64"
    assert stored.dimension == 64
    vector = np.frombuffer(stored.vector, dtype="<f4")
    assert vector.shape == (64,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_editing_one_product_re_embeds_exactly_that_one():
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    before = dict(ProductEmbedding.objects.values_list("product__external_id", "text_hash"))

    edited = [
        *CATALOGUE[:2],
        ProductRecord("MUG-1", "Black ceramic espresso cup", category="Kitchen"),
    ]
    products_upsert(records=edited)
    counts = product_embeddings_refresh()

    after = dict(ProductEmbedding.objects.values_list("product__external_id", "text_hash"))
    assert (counts.products, counts.embedded, counts.unchanged) == (1, 1, 0)
    assert {pid for pid in before if before[pid] != after[pid]} == {"MUG-1"}


def test_reimporting_unchanged_products_embeds_nothing():
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    # An edit that does not touch the embedding text (price) must not cost model time.
    products_upsert(
        records=[ProductRecord("INK-1", CATALOGUE[0].title, category="Office", price=Decimal(9))]
    )

    counts = product_embeddings_refresh()

    assert (counts.products, counts.embedded) == (0, 0)


def test_a_model_change_re_embeds_everything(settings):
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    ProductEmbedding.objects.update(model_name="some-older-model")

    counts = product_embeddings_refresh()

    assert (counts.products, counts.embedded) == (5, 5)
    assert set(ProductEmbedding.objects.values_list("model_name", flat=True)) == {"hashing-v1-64"}


def test_build_records_what_it_holds_and_serves_queries():
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()

    build = vector_index_build()

    assert build.status == BuildStatus.READY
    assert (build.item_count, build.dimension, build.model_name) == (5, 64, "hashing-v1-64")
    assert (build.m, build.ef_construction, build.ef_search) == (16, 200, 128)
    assert build.self_check_recall == 1.0
    assert build.build_seconds is not None
    assert index_build_latest_ready() == build
    assert _ids(product_search(query="printer ink cartridge", k=2)) == ["INK-1", "INK-2"]


def test_similar_excludes_the_product_itself_and_inactive_products():
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    vector_index_build()
    Product.objects.filter(external_id="INK-2").update(is_active=False)
    ink = Product.objects.get(external_id="INK-1")

    similar = _ids(product_semantic_neighbours(product=ink, k=4))

    assert "INK-1" not in similar
    assert "INK-2" not in similar
    assert sorted(similar) == ["LAMP-1", "MUG-1", "MUG-2"]


def test_a_product_added_after_the_build_is_found_through_the_side_buffer():
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    build = vector_index_build()
    products_upsert(records=[ProductRecord("INK-3", "Epson printer ink cartridge multipack")])
    product_embeddings_refresh()

    serving = serving_index()
    found = _ids(product_search(query="epson printer ink cartridge multipack", k=1))

    assert serving.build_id == build.pk
    assert serving.buffer is not None
    assert serving.buffer.ids.tolist() == [Product.objects.get(external_id="INK-3").pk]
    assert found == ["INK-3"]


def test_the_serving_index_answers_several_queries_in_one_call_as_it_answers_each():
    # given: a build, and a product embedded after it (in the side buffer)
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    vector_index_build()
    products_upsert(records=[ProductRecord("INK-3", "Epson printer ink cartridge multipack")])
    product_embeddings_refresh()
    queries = get_embedder().embed(["printer ink cartridge", "coffee beans", "desk lamp"])
    serving = serving_index()
    lazy = serving_index_search(get_embedder().model_name)

    # when: the three asked together (a customer's interests), by the index and the fit's search
    together = serving.many(queries, 4)
    lazily = lazy.many(queries, 4)

    # then: each row's answer is the one a single query gets, the buffered product included
    # (its cosine from a matrix product of all three rows: equal to float32 rounding)
    alone = [serving(query, 4) for query in queries]
    assert [ids.tolist() for ids, _ in together] == [[p for p, _ in a] for a in alone]
    for (_, cosines), one in zip(together, alone, strict=True):
        np.testing.assert_allclose(cosines, [c for _, c in one], rtol=0, atol=1e-6)
    assert [(ids.tolist(), cosines.tolist()) for ids, cosines in lazily] == [
        (ids.tolist(), cosines.tolist()) for ids, cosines in together
    ]
    assert [lazy(query, 4) for query in queries] == alone
    ink_3 = Product.objects.get(external_id="INK-3").pk
    assert ink_3 in together[0][0].tolist()  # The side buffer answers in the batch too.


def test_a_failed_build_leaves_the_previous_build_serving(settings):
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    good = vector_index_build()
    settings.RECSITE_INDEX_M = 1  # Invalid for hnswlib: the build fails before publishing.

    with pytest.raises(ValueError, match="m"):
        vector_index_build()

    failed = IndexBuild.objects.exclude(pk=good.pk).get()
    assert failed.status == BuildStatus.FAILED
    assert failed.error.startswith("ValueError: ")
    assert index_build_latest_ready() == good
    assert serving_index().build_id == good.pk


def test_old_builds_are_pruned_and_a_kept_one_can_be_restored(settings):
    settings.RECSITE_INDEX_KEEP = 2
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    first, second, third = (vector_index_build() for _ in range(3))

    first.refresh_from_db()
    assert first.status == BuildStatus.RETIRED
    assert list(IndexBuild.objects.filter(status=BuildStatus.READY).order_by("pk")) == [
        second,
        third,
    ]
    index_build_rollback(build=second)
    assert index_build_latest_ready() == second
    assert serving_index().build_id == second.pk


def test_a_large_catalogue_s_validation_engines_search_the_serving_index():
    # given: an index build of the catalogue
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    vector_index_build()
    model = get_embedder().model_name
    query = get_embedder().embed(["printer ink cartridge"])[0]

    # when: the search a fit's validation engines get, at and above the exact search's limit
    exact = validation_search(items=EXACT_SEARCH_MAX, model_name=model)
    indexed = validation_search(items=EXACT_SEARCH_MAX + 1, model_name=model)

    # then: none at the limit (the engine's exact search); above it, the serving index's answers
    assert exact is None
    assert indexed is not None
    assert indexed(query, 3) == serving_index().query(query, k=3)[0].pairs()
    assert [Product.objects.get(pk=pid).external_id for pid, _ in indexed(query, 2)] == [
        "INK-1", "INK-2",
    ]  # fmt: skip
