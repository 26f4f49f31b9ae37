"""``HybridEngine.with_config``: request-time fields on a fitted engine, without a refit."""

import pytest

from recommender.ml.engine import ConfigError, EngineConfig, History, HybridEngine
from tests.recommender.ml.test_engine import DAY, NOW, _data


@pytest.fixture
def engine():
    return HybridEngine(EngineConfig()).fit(_data(), now=NOW)


# Viewed (not bought) black ink and coffee: both stay recommendable.
HISTORY = History(
    product_ids=[10, 20], event_types=["view", "view"], timestamps=[NOW - DAY, NOW - 2 * DAY]
)


def _ids(engine):
    return [item.product_id for item in engine.recommend(HISTORY, k=4, now=NOW)]


def _weights(config, **changes):
    return config.replace(source_weights={**config.source_weights, **changes})


def test_an_unchanged_config_gives_the_same_list_and_shares_the_fitted_arrays(engine):
    derived = engine.with_config(EngineConfig())

    assert derived.recommend(HISTORY, k=4, now=NOW) == engine.recommend(HISTORY, k=4, now=NOW)
    assert _ids(derived) == [11, 12, 21, 30]
    assert derived.pending_fit_fields == ()
    assert derived.item_ids is engine.item_ids


def test_a_weight_change_reorders_exactly_as_a_refit_would(engine):
    config = _weights(engine.config, collaborative=0.0)

    derived = engine.with_config(config)
    refitted = HybridEngine(config).fit(_data(), now=NOW)

    # Without the collaborative source the new photo ink (closest by meaning) leads.
    assert _ids(derived) == [30, 11, 10, 20]
    assert derived.recommend(HISTORY, k=4, now=NOW) == refitted.recommend(HISTORY, k=4, now=NOW)
    assert derived.config == config
    assert _ids(engine) == [11, 12, 21, 30]  # The original is untouched.


def test_a_fit_time_change_is_flagged_and_not_applied(engine):
    config = engine.config.replace(ease_lambda=5.0, half_life_days=1.0)

    derived = engine.with_config(config)

    assert derived.pending_fit_fields == ("ease_lambda",)
    assert (derived.config.ease_lambda, derived.config.half_life_days) == (200.0, 1.0)
    assert derived.fitted_config == EngineConfig()
    with pytest.raises(ConfigError, match=r"^ease_lambda: takes effect at the next fit"):
        engine.with_config(config, strict=True)


def test_behaviour_weights_apply_to_histories_now_and_to_the_models_at_the_next_fit(engine):
    weights = {**engine.config.behaviour_weights, "view": 0.9}

    derived = engine.with_config(engine.config.replace(behaviour_weights=weights))

    assert derived.config.behaviour_weights == weights
    assert derived.pending_fit_fields == ("behaviour_weights",)
    # A copy of a copy still compares with the fit, not with the copy.
    assert derived.with_config(EngineConfig()).pending_fit_fields == ()


def test_the_field_sets_cover_every_config_field():
    fit, request = HybridEngine.FIT_TIME_FIELDS, HybridEngine.REQUEST_TIME_FIELDS

    assert set(EngineConfig().to_dict()) == fit | request
    assert {"behaviour_weights"} == fit & request
