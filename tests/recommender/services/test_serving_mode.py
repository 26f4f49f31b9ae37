"""A gunicorn worker that inherited its builds from the master: it keeps them while a newer one
waits to be rolled in, still picks up small changes itself, and loads the newer build itself
only after the grace period. The fork itself is exercised by tests/integration/test_topology.py;
here the worker's side runs in this process, after the same call the post_fork hook makes."""

from pathlib import Path

import pytest

from jobs.services.artifact_store import FilesystemStore, build_base
from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import EngineConfig
from recommender.models import Product
from recommender.services import index as index_service
from recommender.services import recommendations as service
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.index import serving_index, vector_index_build
from recommender.services.ingestion import products_upsert
from recommender.services.search import product_search
from recommender.services.serving_mode import (
    serving_inherit_begin,
    serving_inherit_end,
    serving_status,
)
from tests.recommender.shop import fresh_serving, shop

pytestmark = pytest.mark.django_db

__all__ = ["fresh_serving", "shop"]


@pytest.fixture
def inherited(settings):
    settings.RECSITE_SERVING_ROLL_GRACE_SECONDS = 600
    yield serving_inherit_begin
    serving_inherit_end()


def test_an_inheriting_worker_keeps_its_index_build_but_sees_new_products(shop, inherited):
    # given a worker that inherited the index build the master loaded
    first = serving_index().build_id
    inherited()
    assert serving_status()["builds"]["index"] == {"id": first, "loaded_by": "master"}

    # when a newer build is published, and then a product is embedded after it
    newer = vector_index_build()
    products_upsert(records=[ProductRecord("INK-9", "Brother printer ink cartridge multipack")])
    product_embeddings_refresh()
    serving = serving_index()

    # then the worker still serves its inherited graph, waiting for the master's roll ...
    assert serving.build_id == first
    assert serving_status()["pending"] == {"index": newer.pk}
    assert serving_status()["builds"]["index"] == {"id": first, "loaded_by": "master"}
    # ... with a side buffer relative to that build, so the new product is found at once
    assert serving.buffer is not None
    assert serving.buffer.ids.tolist() == [Product.objects.get(external_id="INK-9").pk]
    found = product_search(query="brother printer ink cartridge multipack", k=1)
    assert [p.external_id for p, _ in found] == ["INK-9"]


def test_after_the_grace_period_the_worker_loads_the_newer_build_itself(shop, inherited, settings):
    # given an inheriting worker and a newer build it has been waiting for
    first = serving_index().build_id
    inherited()
    newer = vector_index_build()
    assert serving_index().build_id == first

    # when the master has not rolled it within the grace period
    settings.RECSITE_SERVING_ROLL_GRACE_SECONDS = 0

    # then it loads the newer build itself (the safety net), and says so
    assert serving_index().build_id == newer.pk
    assert serving_status()["builds"]["index"] == {"id": newer.pk, "loaded_by": "self"}
    assert serving_status()["pending"] == {}


def test_an_inheriting_worker_keeps_its_engine_build_but_applies_a_new_configuration(
    shop, inherited
):
    # given a worker that inherited the master's engine
    first = service.serving_engine()
    inherited()

    # when a newer engine is fitted and then a new configuration version saved
    newer = service.engine_build()
    saved = service.recommendation_config_save(
        config=EngineConfig.from_dict({**first.engine.config.to_dict(), "mmr_lambda": 0.5}),
        note="more diverse",
    )
    serving = service.serving_engine()

    # then it still serves the inherited fit, with the new version's request-time fields
    assert serving.build_id == first.build_id
    assert serving.config_version == saved.version
    assert serving.engine.config.mmr_lambda == 0.5
    assert serving_status()["pending"] == {"engine": newer.pk}


def test_a_newer_build_that_cannot_be_loaded_leaves_the_loaded_one_serving(shop):
    # given a process serving a build
    first = serving_index().build_id
    index_service.serving_index_recheck()

    # when a newer build's files are gone before this process loads it
    newer = vector_index_build()
    path = Path(newer.path)
    FilesystemStore.remove_build_files(path.parent, build_base(path.name))

    # then the loaded build keeps answering (the load is retried at the next check)
    assert serving_index().build_id == first
    found = product_search(query="printer ink cartridge", k=1)
    assert [p.external_id for p, _ in found] == ["INK-3"]


def test_the_master_names_the_model_the_workers_embed_with(settings):
    # A master that looked for another model's index preloaded none, and every worker then held
    # every vector privately (found by bench/scale.py with the 384-dimension stand-in).
    from recommender.services.embeddings import get_embedder
    from recommender.services.serving import configured_model_name

    settings.RECSITE_EMBEDDER = "hashing"
    settings.RECSITE_HASHING_DIMENSION = 384
    get_embedder.cache_clear()
    try:
        assert configured_model_name() == get_embedder().model_name == "hashing-v1-384"
    finally:
        get_embedder.cache_clear()


def test_a_fit_in_a_process_of_its_own_leaves_no_serving_build_loaded(shop):
    # given a process (a worker, `manage.py train`) that served the engine and searched the index
    first = service.serving_engine()
    index_build = serving_index().build_id
    assert serving_status()["builds"] == {
        "engine": {"id": first.build_id, "loaded_by": "self"},
        "index": {"id": index_build, "loaded_by": "self"},
    }
    # when it fits the engine
    newer = service.engine_build()
    # then it holds neither beside the fit, and loads them again when asked
    assert serving_status()["builds"] == {}
    assert service.serving_engine().build_id == newer.pk
    assert serving_index().build_id == index_build


def test_an_inheriting_worker_that_fits_keeps_the_master_s_builds(shop, inherited):
    # given a worker serving what it inherited
    first = service.serving_engine()
    index_build = serving_index().build_id
    inherited()
    # when it fits the engine (a development server running a job in its own process)
    service.engine_build()
    # then the shared builds are still the ones it serves
    assert serving_status()["builds"] == {
        "engine": {"id": first.build_id, "loaded_by": "master"},
        "index": {"id": index_build, "loaded_by": "master"},
    }
