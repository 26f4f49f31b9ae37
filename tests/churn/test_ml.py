"""The framework-free churn code: BG/NBD, features without look-ahead, the model's protocol."""

import numpy as np
import pytest

from churn.ml import bgnbd
from churn.ml.features import FEATURE_NAMES, PURCHASE, VIEW, EventLog, churn_labels, snapshot
from churn.ml.model import (
    NotEnoughHistory,
    TrainingConfig,
    evaluate,
    fit_model,
    training_plan,
)
from churn.ml.persistence import model_load, model_save


def _log(rows, vectors=None):
    """rows: (customer index, day, kind, product index, quantity, value)."""
    a = np.array(rows, dtype=np.float64)
    return EventLog.build(
        customer=a[:, 0].astype(int),
        time=a[:, 1],
        kind=a[:, 2].astype(int),
        product=a[:, 3].astype(int),
        quantity=a[:, 4],
        value=a[:, 5],
        customer_ids=tuple(range(int(a[:, 0].max()) + 1)),
        product_category=np.array([0, 0, 1]),
        product_vectors=vectors,
    )


def _synthetic_log(n=400, days=400.0, seed=3):
    """Customers who buy at their own pace from a start day until they stop."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):
        start = rng.uniform(0, days / 2)
        stop = min(start + rng.exponential(150), days)
        gap = rng.uniform(4, 30)
        day = start
        while day < stop:
            rows.append((c, day, PURCHASE, int(rng.integers(0, 3)), 1, 10.0))
            day += rng.exponential(gap)
    return _log(rows)


# BG/NBD --------------------------------------------------------------------------------------


def test_bgnbd_fit_recovers_the_parameters_of_simulated_customers():
    # Given 10,000 customers drawn from known parameters (seeded), observed 26 to 52 weeks
    true = bgnbd.BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
    rng = np.random.default_rng(42)
    T = rng.uniform(26, 52, size=10_000)
    x, t_x = bgnbd.simulate(true, T, rng=rng)

    # When fitted by maximum likelihood
    fitted = bgnbd.fit(x, t_x, T)

    # Then every parameter is within 10% of the truth (sampling error at this size is ~5%)
    for name, value in true.as_dict().items():
        assert fitted.as_dict()[name] == pytest.approx(value, rel=0.10), name


def test_bgnbd_reproduces_the_published_cdnow_fit(shared_data):
    # Given the CDNOW calibration summary of Fader, Hardie & Lee (2005)
    d = np.genfromtxt(
        shared_data / "cdnow" / "cdnow_customers_summary.csv", delimiter=",", names=True
    )

    # When fitted
    p = bgnbd.fit(d["frequency"], d["recency"], d["T"])

    # Then the paper's estimates come back (r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert (round(p.r, 3), round(p.alpha, 2), round(p.a, 3), round(p.b, 2)) == (
        0.243,
        4.41,
        0.793,
        2.43,
    )
    # and so does the paper's worked example: x=2, t_x=30.43, T=38.86 -> 1.226 in 39 weeks
    one = bgnbd.expected_purchases(p, 39, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert round(float(one[0]), 3) == 1.226


def test_bgnbd_customer_without_repeat_purchases_is_alive():
    p = bgnbd.BgNbdParams(0.25, 4.0, 0.8, 2.5)
    alive = bgnbd.p_alive(p, np.array([0.0]), np.array([0.0]), np.array([30.0]))
    assert alive.tolist() == [1.0]


def test_p_no_purchase_is_one_minus_alive_plus_alive_times_quiet_spell():
    p = bgnbd.BgNbdParams(0.5, 2.0, 1.0, 3.0)
    x, t_x, T = np.array([3.0]), np.array([10.0]), np.array([20.0])
    alive = bgnbd.p_alive(p, x, t_x, T)[0]
    quiet = ((2.0 + 20.0) / (2.0 + 20.0 + 5.0)) ** (0.5 + 3.0)
    assert bgnbd.p_no_purchase(p, 5.0, x, t_x, T)[0] == pytest.approx(1 - alive + alive * quiet)


# Features ------------------------------------------------------------------------------------


def test_features_of_a_small_history():
    # Given customer 0 who bought on days 10, 20 and 40 and viewed on day 45
    log = _log(
        [
            (0, 10.2, PURCHASE, 0, 2, 5.0),
            (0, 20.5, PURCHASE, 1, 1, 3.0),
            (0, 20.6, PURCHASE, 2, 1, 4.0),
            (0, 40.1, PURCHASE, 0, 3, 6.0),
            (0, 45.0, VIEW, 1, 1, float("nan")),
        ]
    )

    # When featurised as of day 50
    snap = snapshot(log, cutoff=50.0, horizon=30.0)
    f = dict(zip(FEATURE_NAMES, snap.X[0], strict=True))

    # Then
    assert snap.customers.tolist() == [0]
    assert round(f["recency_days"], 1) == 9.9
    assert f["frequency"] == 3
    assert round(f["tenure_days"], 1) == 39.8
    assert f["monetary_total"] == 18.0
    assert f["ipt_mean"] == 15.0  # gaps of 10 and 20 days
    assert f["ipt_last"] == 20.0
    assert f["ipt_std"] == 5.0
    assert f["basket_lines"] == pytest.approx(4 / 3)
    assert f["basket_quantity"] == pytest.approx(7 / 3)
    assert f["product_breadth"] == 3
    assert f["category_breadth"] == 2
    assert f["views_90d"] == 1
    assert f["browse_share"] == pytest.approx(0.2)
    assert f["purchases_30d"] == 2  # days 20 and 40


def test_an_event_after_the_cutoff_changes_no_feature():
    # Given a history, and the same history with extra events at and after the cutoff
    base = [(0, 5.0, PURCHASE, 0, 1, 2.0), (1, 8.0, PURCHASE, 1, 1, 3.0), (0, 30.0, VIEW, 2, 1, 0)]
    later = [
        (0, 60.0, PURCHASE, 2, 9, 99.0),
        (1, 60.0, VIEW, 0, 1, 0),
        (2, 61.0, PURCHASE, 0, 1, 1),
    ]
    vectors = np.eye(3, dtype=np.float32)

    # When both are featurised as of day 60
    before = snapshot(_log(base, vectors), cutoff=60.0, horizon=30.0)
    after = snapshot(_log(base + later, vectors), cutoff=60.0, horizon=30.0)

    # Then the customers and every feature are the same
    assert before.customers.tolist() == after.customers.tolist() == [0, 1]
    np.testing.assert_array_equal(before.X, after.X)


def test_labels_read_only_the_horizon_after_the_cutoff():
    log = _log(
        [
            (0, 1.0, PURCHASE, 0, 1, 1),
            (1, 1.0, PURCHASE, 0, 1, 1),
            (2, 1.0, PURCHASE, 0, 1, 1),
            (0, 15.0, PURCHASE, 0, 1, 1),  # within the 10-day horizon after day 10
            (1, 20.0, PURCHASE, 0, 1, 1),  # after it
        ]
    )
    snap = snapshot(log, cutoff=10.0, horizon=10.0)
    assert churn_labels(log, snap, horizon=10.0).tolist() == [0, 1, 1]


def test_interest_drift_is_one_minus_cosine_of_old_and_recent_centroids():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    log = _log(
        [(0, 1.0, PURCHASE, 0, 1, 1), (0, 150.0, PURCHASE, 1, 1, 1)], vectors
    )  # day 1 is before the last 90 days of day 200, day 150 within them
    snap = snapshot(log, cutoff=200.0, horizon=30.0)
    assert snap.column("interest_drift").tolist() == [1.0]


# Model -----------------------------------------------------------------------------------------


def test_training_snapshots_end_their_label_windows_by_the_label_end():
    log = _synthetic_log()
    plan = training_plan(log, label_end=300.0, horizon=60.0, config=TrainingConfig())
    assert plan.train_horizon == 60.0
    assert plan.cutoffs == (240.0, 226.0, 212.0, 198.0, 184.0, 170.0, 156.0, 142.0)
    assert max(plan.cutoffs) + plan.train_horizon == 300.0


def test_extra_tasks_use_shorter_windows_on_newer_snapshots_ending_by_the_label_end():
    log = _synthetic_log()
    plan = training_plan(log, label_end=300.0, horizon=60.0, config=TrainingConfig())
    # 3/4, 1/2 and 1/4 of 60 days, 14 days apart, newer than the main task's newest (240)
    assert plan.extra == (
        (45.0, (255.0, 241.0)),
        (30.0, (270.0, 256.0, 242.0)),
        (15.0, (285.0, 271.0, 257.0, 243.0)),
    )


def test_a_short_history_shortens_the_training_horizon():
    # Given 130 days of events before the label end, 60 needed as history and 3 snapshots 14
    # days apart: 130 - 60 - 28 = 42 days of label window fit, not 90
    log = _synthetic_log(days=400)
    plan = training_plan(log, label_end=log.first_time + 130, horizon=90.0, config=TrainingConfig())
    assert plan.train_horizon == 42.0
    assert len(plan.cutoffs) == 3


def test_too_short_a_history_is_refused():
    log = _synthetic_log(days=400)
    with pytest.raises(NotEnoughHistory, match="do not fit"):
        training_plan(log, label_end=log.first_time + 100, horizon=90.0, config=TrainingConfig())


def test_evaluate_reports_the_model_and_both_baselines():
    log = _synthetic_log()
    result = evaluate(log, cutoff=330.0, horizon=60.0)
    assert set(result["methods"]) == {"model", "bgnbd", "rfm_logreg"}
    for metrics in result["methods"].values():
        assert set(metrics) == {"roc_auc", "pr_auc", "brier", "curves"}
        assert len(metrics["curves"]["roc_fpr"]) == 51
    assert max(result["training_cutoffs"]) + result["train_horizon_days"] == 330.0


def test_evaluate_refuses_incomplete_labels():
    log = _synthetic_log(days=400)
    with pytest.raises(NotEnoughHistory, match="labels would be incomplete"):
        evaluate(log, cutoff=log.last_time - 10, horizon=60.0)


def test_model_round_trips_through_its_files_and_explains_itself(tmp_path):
    log = _synthetic_log()
    model, _ = fit_model(log, label_end=330.0, horizon=60.0)
    model_save(model, tmp_path / "model-1-ab.json")
    again = model_load(tmp_path / "model-1-ab.json")
    snap = snapshot(log, cutoff=330.0, horizon=model.train_horizon)
    np.testing.assert_array_equal(model.predict(snap.X), again.predict(snap.X))
    assert again.version == model.version
    effects = model.contributions(snap.X[:5])
    assert effects.shape == (5, len(FEATURE_NAMES))
    # A row equal to the medians everywhere differs from the typical customer in nothing.
    typical = np.where(np.isnan(model.medians), 0.0, model.medians)[None, :]
    assert np.abs(model.contributions(typical)).max() == 0.0


def test_training_twice_gives_the_same_version():
    log = _synthetic_log()
    first, _ = fit_model(log, label_end=330.0, horizon=60.0)
    second, _ = fit_model(log, label_end=330.0, horizon=60.0)
    assert first.version == second.version
    assert first.version.startswith("churn-19701127-h60-")
