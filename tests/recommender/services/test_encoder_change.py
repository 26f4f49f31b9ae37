"""Changing an encoder: everything is re-embedded, and no index or tagging run ever holds
vectors of two models (hashing embedders of two dimensions stand for two models)."""

import numpy as np
import pytest

from jobs.choices import BuildStatus
from recommender.ingestion.records import ProductRecord
from recommender.models import IndexBuild, ProductEmbedding
from recommender.services import index as index_service
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.ingestion import products_upsert
from recommender.services.search import product_search
from tagging.models import ProductTag, TaggingVector
from tagging.services import tag_ensure, tagging_run

pytestmark = pytest.mark.django_db

CATALOGUE = [
    ProductRecord("INK-1", "HP 78 tri-colour printer ink cartridge", category="Office"),
    ProductRecord("INK-2", "Canon black printer ink cartridge", category="Office"),
    ProductRecord("MUG-1", "White ceramic coffee mug", category="Kitchen"),
    ProductRecord("MUG-2", "Blue enamel coffee mug", category="Kitchen"),
]


@pytest.fixture(autouse=True)
def fresh_index(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    yield
    get_embedder.cache_clear()
    index_service.serving_index_reset()


def test_a_new_index_encoder_re_embeds_everything_and_never_mixes_two_models(settings):
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    old = index_service.vector_index_build()
    assert (old.model_name, old.dimension, old.item_count) == ("hashing-v1-64", 64, 4)

    # The index encoder changes...
    settings.RECSITE_EMBED_MODEL = "hashing-v1-32"
    get_embedder.cache_clear()
    # ...so a build before re-embedding refuses, rather than index the old model's vectors.
    with pytest.raises(ValueError, match="no embedded active products for model 'hashing-v1-32'"):
        index_service.vector_index_build()
    assert index_service.serving_index().model_name == "hashing-v1-32"
    assert index_service.serving_index().build is None  # The old build is not served.

    counts = product_embeddings_refresh()
    new = index_service.vector_index_build()

    assert (counts.products, counts.embedded) == (4, 4)
    assert set(ProductEmbedding.objects.values_list("model_name", "dimension")) == {
        ("hashing-v1-32", 32)
    }
    assert (new.model_name, new.dimension, new.item_count) == ("hashing-v1-32", 32, 4)
    ready = IndexBuild.objects.filter(status=BuildStatus.READY)
    assert sorted(ready.values_list("model_name", "dimension")) == [
        ("hashing-v1-32", 32),
        ("hashing-v1-64", 64),
    ]
    assert index_service.serving_index().build == new
    found = {p.external_id for p, _ in product_search(query="coffee mug", k=2)}
    assert found == {"MUG-1", "MUG-2"}


def test_a_tagging_encoder_of_its_own_keeps_its_own_vectors_and_re_embeds_on_change(settings):
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    tag_ensure(name="kitchen/mugs")
    tag_ensure(name="office/ink")
    settings.RECSITE_TAGGING_MODEL = "hashing-v1-32"
    get_embedder.cache_clear()

    counts = tagging_run()

    assert counts.encoder == "hashing-v1-32"
    assert counts.model_version.startswith("hashing-v1-32/zero-shot")
    assert set(TaggingVector.objects.values_list("model_name", "dimension")) == {
        ("hashing-v1-32", 32)
    }
    assert TaggingVector.objects.count() == 4
    # The index keeps its own model's vectors.
    assert set(ProductEmbedding.objects.values_list("model_name", flat=True)) == {"hashing-v1-64"}
    assert ProductTag.objects.filter(model_version__startswith="hashing-v1-32/").count() > 0

    settings.RECSITE_TAGGING_MODEL = "hashing-v1-16"
    get_embedder.cache_clear()
    again = tagging_run()

    assert again.encoder == "hashing-v1-16"
    vectors = TaggingVector.objects.values_list("model_name", "dimension", "vector")
    assert {(m, d) for m, d, _ in vectors} == {("hashing-v1-16", 16)}
    assert all(np.frombuffer(bytes(v), dtype="<f4").shape == (16,) for _, _, v in vectors)
