"""Rolling the vector index back: ``manage.py rollback_index`` and the admin action."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.choices import BuildStatus
from jobs.selectors import build_latest_ready
from recommender.ingestion.records import ProductRecord
from recommender.models import IndexBuild
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.index import serving_index, serving_index_reset, vector_index_build
from recommender.services.ingestion import products_upsert

CATALOGUE = [
    ProductRecord("MUG-1", "Ceramic coffee mug", category="Kitchen"),
    ProductRecord("TEA-1", "Green tea", category="Kitchen"),
    ProductRecord("SOCK-1", "Wool socks", category="Clothing"),
]


@pytest.fixture(autouse=True)
def fresh_index(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    settings.RECSITE_INDEX_KEEP = 3
    get_embedder.cache_clear()
    serving_index_reset()
    yield
    serving_index_reset()


@pytest.fixture
def builds(db):
    """Three READY builds, oldest first; the last one serves."""
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    return [vector_index_build() for _ in range(3)]


def _rollback(*args):
    out = StringIO()
    call_command("rollback_index", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_the_command_serves_the_build_before_the_serving_one_by_default(builds):
    first, second, third = builds

    out = _rollback()

    assert out == (
        f"Index build {second.pk} (3 items, hashing-v1-64) serves again (was build {third.pk}).\n"
    )
    assert build_latest_ready(IndexBuild) == second
    assert serving_index().build_id == second.pk


def test_the_command_serves_the_build_it_is_given(builds):
    first, _, third = builds

    out = _rollback(first.pk)

    assert (
        out
        == f"Index build {first.pk} (3 items, hashing-v1-64) serves again (was build {third.pk}).\n"
    )
    assert build_latest_ready(IndexBuild) == first
    assert serving_index().build_id == first.pk


def test_the_command_refuses_an_unknown_or_unready_build_and_changes_nothing(builds):
    first, _, third = builds
    IndexBuild.objects.filter(pk=first.pk).update(status=BuildStatus.FAILED)

    with pytest.raises(CommandError, match=r"^index build 999999 not found$"):
        _rollback(999999)
    with pytest.raises(
        CommandError, match=rf"^build {first.pk} is failed; only a READY build can be restored$"
    ):
        _rollback(first.pk)
    assert build_latest_ready(IndexBuild) == third


def test_the_command_says_when_there_is_nothing_to_go_back_to(db):
    products_upsert(records=CATALOGUE)
    product_embeddings_refresh()
    only = vector_index_build()

    with pytest.raises(
        CommandError,
        match=r"^no earlier READY index build to roll back to \(RECSITE_INDEX_KEEP=3 are kept\)$",
    ):
        _rollback()
    assert build_latest_ready(IndexBuild) == only


@pytest.fixture
def admin_site(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="x-1234567"))
    return client


def test_the_admin_action_serves_the_selected_build_again(builds, admin_site):
    first, _, _ = builds

    response = admin_site.post(
        "/admin/recommender/indexbuild/",
        {"action": "rollback", "_selected_action": [first.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        f"Index build {first.pk} serves again."
    ]
    assert build_latest_ready(IndexBuild) == first


def test_the_admin_action_takes_one_ready_build_only(builds, admin_site):
    first, second, third = builds
    IndexBuild.objects.filter(pk=first.pk).update(status=BuildStatus.RETIRED)

    two = admin_site.post(
        "/admin/recommender/indexbuild/",
        {"action": "rollback", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    retired = admin_site.post(
        "/admin/recommender/indexbuild/",
        {"action": "rollback", "_selected_action": [first.pk]},
        follow=True,
    )

    assert [str(m) for m in two.context["messages"]] == ["Select exactly one index build."]
    assert [str(m) for m in retired.context["messages"]] == [
        f"build {first.pk} is retired; only a READY build can be restored"
    ]
    assert build_latest_ready(IndexBuild) == third


def test_the_admin_lists_builds_read_only(builds, admin_site):
    first = builds[0]

    listing = admin_site.get("/admin/recommender/indexbuild/")
    detail = admin_site.get(f"/admin/recommender/indexbuild/{first.pk}/change/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert admin_site.get("/admin/recommender/indexbuild/add/").status_code == 403
    assert 'name="model_name"' not in detail.content.decode()  # Shown, not editable.
