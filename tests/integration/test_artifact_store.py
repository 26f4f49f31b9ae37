"""The artifact store: index and engine builds published to S3-compatible object storage (a real
S3 server, moto's, in its own process) and to a shared folder, read from other "hosts" (other
cache folders), pruned and swept; failures publish nothing; misconfiguration is reported."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from jobs.choices import BuildStatus
from jobs.services.artifact_store import ArtifactStoreError, build_base
from jobs.services.artifacts import artifact_publishing
from recommender.checks import artifact_store_check
from recommender.models import IndexBuild
from recommender.services import index as index_service
from recommender.services import recommendations as recommendation_service
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.index import index_build_latest_ready, vector_index_build
from recommender.services.ingestion import products_upsert
from recommender.services.search import product_search
from tests.recommender.shop import CATALOGUE, fresh_serving, shop_build

from .conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

__all__ = ["fresh_serving"]  # The recommendation tests' fixture, used by `fresh`.

HEX16 = "[0-9a-f]{16}"


@pytest.fixture
def fresh(fresh_serving):
    """A fresh index folder, embedder and serving caches (the recommendation tests' fixture)."""


def _search(query: str, k: int = 3) -> list[str]:
    return [product.external_id for product, _ in product_search(query=query, k=k)]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _catalogue() -> None:
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()


# Object storage -------------------------------------------------------------------------------


def test_an_index_build_is_uploaded_and_another_host_downloads_it_once(
    s3_bucket, fresh, settings, tmp_path
):
    # given a catalogue, indexed by this host with the S3 store
    _catalogue()
    build = vector_index_build()

    # then the row names the manifest in the bucket, which holds exactly the build's two files
    name = build.path.rsplit("/", 1)[1]
    assert re.fullmatch(rf"build-{build.pk}-[0-9a-f]{{8}}\.json", name)
    assert build.path == f"s3://{s3_bucket.name}/art/index/{name}"
    keys = s3_bucket.object_keys()
    assert len(keys) == 2
    assert keys[0] == f"art/index/{name}"
    assert re.fullmatch(rf"art/index/{re.escape(name)}\.{HEX16}\.hnsw", keys[1])
    # and the writer's cache already holds them
    assert _files(tmp_path / "cache-here" / "index") == [k.rsplit("/", 1)[1] for k in keys]

    # when another host, with an empty cache, serves searches
    settings.RECSITE_ARTIFACT_CACHE_DIR = tmp_path / "other-host"
    index_service.serving_index_reset()
    found = _search("printer ink cartridge")

    # then it downloaded the build into its cache and serves it
    assert found == ["INK-3", "INK-1", "INK-2"]
    assert index_service.serving_index().build_id == build.pk
    assert _files(tmp_path / "other-host" / "index") == [k.rsplit("/", 1)[1] for k in keys]

    # and a later load on that host reads its cache, never the store (names are immutable)
    client = s3_bucket.client()
    for key in keys:
        client.delete_object(Bucket=s3_bucket.name, Key=key)
    index_service.serving_index_reset()
    assert _search("printer ink cartridge") == ["INK-3", "INK-1", "INK-2"]


def test_an_engine_build_goes_through_the_store_and_serves_from_another_host(
    s3_bucket, fresh, settings, tmp_path
):
    # given the test shop fitted with the S3 store
    build = shop_build()
    name = build.path.rsplit("/", 1)[1]
    assert re.fullmatch(rf"engine-{build.pk}-[0-9a-f]{{8}}\.engine", name)
    assert f"art/engine/{name}" in s3_bucket.object_keys()

    # when another host serves it
    settings.RECSITE_ARTIFACT_CACHE_DIR = tmp_path / "other-host"
    recommendation_service.serving_engine_reset()
    serving = recommendation_service.serving_engine()

    # then it loads the downloaded copy, and the tuning sample would be saved beside it
    assert serving.build_id == build.pk
    assert serving.path == str(tmp_path / "other-host" / "engine" / name)
    assert _files(tmp_path / "other-host" / "engine") == [name]


def test_pruning_deletes_retired_builds_from_the_bucket_and_the_cache(s3_bucket, fresh, settings):
    # given two builds while one is kept
    settings.RECSITE_INDEX_KEEP = 1
    _catalogue()
    first = vector_index_build()
    second = vector_index_build()

    # then the first is retired and its files are gone from the bucket and from the cache
    first.refresh_from_db()
    assert (first.status, second.status) == (BuildStatus.RETIRED, BuildStatus.READY)
    base = second.path.rsplit("/", 1)[1]
    keys = s3_bucket.object_keys()
    assert [k.rsplit("/", 1)[1].startswith(base) for k in keys] == [True, True]
    cached = _files(Path(settings.RECSITE_ARTIFACT_CACHE_DIR) / "index")
    assert cached == [k.rsplit("/", 1)[1] for k in keys]


def test_files_of_a_killed_build_are_swept_by_the_next_build(s3_bucket, fresh):
    # given a build whose worker was killed mid-upload (a data file went up, no manifest)
    _catalogue()
    kept = vector_index_build()
    killed = IndexBuild.objects.create(
        status=BuildStatus.BUILDING, model_name="x", m=16, ef_construction=200, ef_search=128
    )
    orphan = f"art/index/build-{killed.pk}-deadbeef.json.0123456789abcdef.hnsw"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=orphan, Body=b"partial")
    # ... and then failed by the stale-job sweep
    IndexBuild.objects.filter(pk=killed.pk).update(status=BuildStatus.FAILED)

    # when the next build publishes
    newest = vector_index_build()

    # then the orphan is gone and the live builds' files stay
    keys = s3_bucket.object_keys()
    assert orphan not in keys
    assert len(keys) == 4
    assert {build_base(k.rsplit("/", 1)[1]) for k in keys} == {
        build_base(b.path.rsplit("/", 1)[1]) for b in (kept, newest)
    }


def test_an_upload_that_fails_publishes_nothing_and_the_previous_build_serves(
    s3_bucket, fresh, settings
):
    # given a build that serves
    _catalogue()
    good = vector_index_build()
    good_keys = s3_bucket.object_keys()
    good_options = settings.STORAGES["artifacts"]["OPTIONS"]

    # when the store's bucket is missing at the next build
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**good_options, "bucket_name": "no-such-bucket"},
        },
    }
    with pytest.raises(ArtifactStoreError) as raised:
        vector_index_build()

    # then the build failed with a message naming the store and the problem
    failed = IndexBuild.objects.get(status=BuildStatus.FAILED)
    name = f"build-{failed.pk}-"
    assert str(raised.value).startswith(f"cannot upload {name}")
    assert str(raised.value).endswith(
        f".json to S3 store s3://no-such-bucket/art at {s3_bucket.endpoint}: "
        "the bucket does not exist (RECSITE_ARTIFACT_S3_BUCKET)"
    )
    assert failed.error == f"ArtifactStoreError: {raised.value}"
    # and nothing of it is anywhere: not in the bucket, not in the local staging folder
    assert s3_bucket.object_keys() == good_keys
    cache = Path(settings.RECSITE_ARTIFACT_CACHE_DIR) / "index"
    assert [f for f in _files(cache) if f.startswith(name)] == []
    # and the previous build keeps serving
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": good_options},
    }
    assert index_build_latest_ready() == good
    assert index_service.serving_index().build_id == good.pk


def test_a_misconfigured_store_fails_the_system_check(s3_bucket, settings):
    options = settings.STORAGES["artifacts"]["OPTIONS"]

    def configure(**changes):
        settings.STORAGES = {
            **settings.STORAGES,
            "artifacts": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {**options, **changes},
            },
        }

    assert artifact_store_check() == []

    configure(bucket_name="no-such-bucket")
    [missing] = artifact_store_check()
    assert missing.id == "recommender.E001"
    assert missing.msg == (
        f"The artifact store cannot be used: S3 store s3://no-such-bucket/art at "
        f"{s3_bucket.endpoint} is not usable: the bucket does not exist "
        "(RECSITE_ARTIFACT_S3_BUCKET)"
    )

    configure(bucket_name="")
    [empty] = artifact_store_check()
    assert empty.msg == (
        "The artifact store cannot be used: RECSITE_ARTIFACT_S3_BUCKET is empty: the S3 "
        "artifact store needs a bucket name"
    )

    nobody = f"http://127.0.0.1:{free_port()}"
    configure(endpoint_url=nobody)
    [unreachable] = artifact_store_check()
    assert unreachable.msg.startswith(
        f"The artifact store cannot be used: S3 store s3://{s3_bucket.name}/art at {nobody} "
        "is not usable: the endpoint is unreachable (RECSITE_ARTIFACT_S3_ENDPOINT_URL): "
    )
    with pytest.raises(SystemCheckError, match="recommender.E001"):
        call_command("check")


# Filesystem -----------------------------------------------------------------------------------


def test_filesystem_builds_live_under_the_artifact_dir_one_folder_per_kind(fresh, settings):
    # given a shared artifact folder (by default the index folder)
    root = Path(settings.RECSITE_INDEX_DIR)

    # when the test shop is indexed and fitted
    engine_build = shop_build()
    index_build = IndexBuild.objects.get()

    # then each row records the absolute path of its main file in its kind's folder
    assert Path(index_build.path).parent == root / "index"
    assert Path(engine_build.path).parent == root / "engine"
    index_name = Path(index_build.path).name
    assert re.fullmatch(rf"build-{index_build.pk}-[0-9a-f]{{8}}\.json", index_name)
    [manifest, data] = _files(root / "index")
    assert manifest == index_name
    assert re.fullmatch(rf"{re.escape(index_name)}\.{HEX16}\.hnsw", data)
    assert _files(root / "engine") == [Path(engine_build.path).name]


def test_a_build_saved_before_the_store_still_serves_and_is_pruned(fresh, settings):
    # given a build saved where the index used to live (RECSITE_INDEX_DIR/build-N.json)
    _catalogue()
    current = vector_index_build()
    index = index_service.serving_index().index
    assert index is not None
    legacy_path = Path(settings.RECSITE_INDEX_DIR) / f"build-{current.pk}.json"
    index.save(legacy_path)
    IndexBuild.objects.filter(pk=current.pk).update(path=str(legacy_path))
    index_service.serving_index_reset()

    # then it serves from there
    assert _search("printer ink cartridge") == ["INK-3", "INK-1", "INK-2"]

    # and when it is retired, its files go
    settings.RECSITE_INDEX_KEEP = 1
    vector_index_build()
    assert [p.name for p in Path(settings.RECSITE_INDEX_DIR).iterdir() if p.is_file()] == []


def test_files_of_dead_builds_are_swept_from_a_shared_folder(fresh, settings):
    # given leftovers of a build killed mid-save (a temporary data file) and a failed one
    _catalogue()
    kept = vector_index_build()
    folder = Path(settings.RECSITE_INDEX_DIR) / "index"
    killed = IndexBuild.objects.create(
        status=BuildStatus.FAILED, model_name="x", m=16, ef_construction=200, ef_search=128
    )
    leftovers = [
        f".build-{killed.pk}-deadbeef.json.0123456789abcdef.hnsw.tmp",
        f"build-{killed.pk}-deadbeef.json.0123456789abcdef.hnsw",
    ]
    for leftover in leftovers:
        (folder / leftover).write_bytes(b"partial")

    # when the next build publishes
    newest = vector_index_build()

    # then only the live builds' files remain: a manifest and a data file each
    remaining = _files(folder)
    assert len(remaining) == 4
    assert {build_base(f) for f in remaining} == {
        build_base(Path(b.path).name) for b in (kept, newest)
    }
    assert not any((folder / leftover).exists() for leftover in leftovers)


def test_a_writer_that_fails_leaves_no_file(fresh, settings):
    folder = Path(settings.RECSITE_INDEX_DIR) / "index"

    def write_then_fail() -> None:
        with artifact_publishing(kind="index", name="build-99-0badcafe.json") as publication:
            publication.main.write_bytes(b"{}")
            data = publication.main.with_name(publication.main.name + ".0123456789abcdef.hnsw")
            data.write_bytes(b"graph")
            raise RuntimeError("fit failed")

    with pytest.raises(RuntimeError, match="fit failed"):
        write_then_fail()
    assert _files(folder) == []


def test_an_unwritable_artifact_dir_fails_the_system_check(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.RECSITE_ARTIFACT_DIR = str(blocker / "artifacts")

    [error] = artifact_store_check()

    assert error.msg == (
        f"The artifact store cannot be used: RECSITE_ARTIFACT_DIR: cannot create "
        f"{blocker / 'artifacts'}: Not a directory"
    )
