"""Churn models are saved like every other build: data files, no pickle, in the artifact store."""

import json
import pickle
from datetime import timedelta

import numpy as np
import pytest

from churn import selectors, services
from churn.ml.features import snapshot
from churn.ml.model import TrainingConfig, fit_model
from churn.ml.persistence import SavedClassifier, arrays_path, model_load, model_save
from churn.models import ChurnModelBuild
from jobs.choices import BuildStatus
from tests.churn.shop import AS_OF
from tests.churn.test_ml import _synthetic_log


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_a_saved_model_is_json_and_plain_arrays_and_predicts_exactly_the_same(
    tmp_path, calibration
):
    log = _synthetic_log()
    model, _ = fit_model(
        log, label_end=330.0, horizon=60.0, config=TrainingConfig(calibration=calibration)
    )
    main = tmp_path / "model-7-0a1b2c3d.json"

    model_save(model, main)
    again = model_load(main)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-7-0a1b2c3d.json",
        "model-7-0a1b2c3d.npz",
    ]
    manifest = json.loads(main.read_text())
    assert (manifest["format"], manifest["version"]) == (3, model.version)
    assert manifest["calibration"]["method"] == calibration
    with np.load(arrays_path(main), allow_pickle=False) as arrays:  # Plain arrays only.
        assert arrays["medians"].shape == (len(model.feature_names),)
    assert isinstance(again.classifier, SavedClassifier)
    assert (again.plan, again.config, again.importances) == (
        model.plan,
        model.config,
        model.importances,
    )
    snap = snapshot(log, cutoff=330.0, horizon=model.train_horizon)
    np.testing.assert_array_equal(again.predict(snap.X), model.predict(snap.X))
    np.testing.assert_array_equal(
        again.contributions(snap.X[:10]), model.contributions(snap.X[:10])
    )


def test_a_pickled_model_of_the_previous_format_is_refused_not_executed(tmp_path):
    main = tmp_path / "churn-20240828-h30-0123456789.pkl"
    main.write_bytes(pickle.dumps({"format": 2}))

    with pytest.raises(ValueError, match="^not a churn model artifact of this version$"):
        model_load(main)


@pytest.mark.django_db
def test_training_publishes_a_ready_build_in_the_artifact_store(churn_shop, settings):
    build = services.churn_model_train(as_of=AS_OF)

    stored = settings.RECSITE_ARTIFACT_DIR / "churn"
    assert build.status == BuildStatus.READY
    assert build.finished_at is not None
    assert build.path == str(stored / f"{build.path.rsplit('/', 1)[1]}")
    base = build.path.rsplit("/", 1)[1].removesuffix(".json")
    assert base.startswith(f"model-{build.pk}-")
    assert sorted(p.name for p in stored.iterdir()) == [f"{base}.json", f"{base}.npz"]
    assert selectors.churn_model_build_latest() == build
    assert services.churn_model_needs_training(horizon=build.horizon_days) is False


@pytest.mark.django_db
def test_old_model_builds_are_retired_and_their_files_removed(churn_shop, settings):
    settings.RECSITE_INDEX_KEEP = 1
    first = services.churn_model_train(as_of=AS_OF - timedelta(days=7))
    second = services.churn_model_train(as_of=AS_OF)

    first.refresh_from_db()
    assert (first.status, second.status) == (BuildStatus.RETIRED, BuildStatus.READY)
    stored = sorted(p.name for p in (settings.RECSITE_ARTIFACT_DIR / "churn").iterdir())
    assert [name.split("-")[1] for name in stored] == [str(second.pk), str(second.pk)]
    assert selectors.churn_model_build_latest() == second


@pytest.mark.django_db
def test_a_build_whose_files_are_gone_or_of_an_old_format_is_trained_anew(churn_shop, settings):
    build = services.churn_model_train(as_of=AS_OF)
    services._models.clear()
    old = settings.RECSITE_ARTIFACT_DIR / "churn-20240828-h30-0123456789.pkl"
    old.write_bytes(pickle.dumps({"format": 2}))
    ChurnModelBuild.objects.filter(pk=build.pk).update(path=str(old))

    assert services.churn_model_needs_training(horizon=build.horizon_days) is True
    old.unlink()
    assert services.churn_model_needs_training(horizon=build.horizon_days) is True
