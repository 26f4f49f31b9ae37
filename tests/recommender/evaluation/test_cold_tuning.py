import pytest

from recommender.evaluation.cold_tuning import (
    choose_exposure,
    choose_exposure_default,
    choose_share,
)


def _row(share, warm, cold):
    return {"cold_collaborative": share, "warm_ndcg@10": warm, "cold_ndcg@10": cold}


ROWS = [
    _row(0.0, 0.1000, 0.003),
    _row(0.25, 0.0998, 0.014),
    _row(0.5, 0.0994, 0.035),
    _row(1.0, 0.0960, 0.095),
]


@pytest.mark.parametrize(
    ("tolerance", "expected"),
    [
        (0.0, 0.0),  # No warm loss allowed: only the reference qualifies.
        (0.003, 0.25),  # 0.5 costs 0.6% of warm NDCG: over the limit.
        (0.007, 0.5),
        (0.05, 1.0),
    ],
)
def test_the_best_cold_share_within_the_warm_tolerance_is_chosen(tolerance, expected):
    assert choose_share(ROWS, tolerance=tolerance) == expected


def test_a_tie_in_cold_accuracy_goes_to_the_smaller_share():
    rows = [_row(0.0, 0.1, 0.01), _row(0.5, 0.1, 0.02), _row(1.0, 0.1, 0.02)]
    assert choose_share(rows, tolerance=0.0) == 0.5


def _point(slots, least, warm, cold_recall):
    return {
        "exposure_slots": slots,
        "exposure_min_score": least,
        "warm_ndcg@10": warm,
        "cold_recall@10": cold_recall,
    }


CONTENT = {"content_cold_recall@10": 0.10}
EXPOSURE_ROWS = [
    _point(0, 0.0, 0.1000, 0.010),
    _point(1, 0.5, 0.0980, 0.070),  # 2% warm loss, 70% of content's cold recall.
    _point(1, 1.0, 0.0990, 0.060),
    _point(2, 0.5, 0.0955, 0.095),  # 4.5% warm loss, 95%.
    _point(2, 1.0, 0.0970, 0.085),  # 3% warm loss, 85%: the cheapest point that reaches 80%.
    _point(3, 0.5, 0.0900, 0.120),  # 10% warm loss: over the limit.
]


def test_the_cheapest_point_that_reaches_the_cold_target_is_chosen():
    assert choose_exposure(EXPOSURE_ROWS, CONTENT) == (2, 1.0)
    # A lower target: (1, 0.5) reaches 70% and costs less.
    assert choose_exposure(EXPOSURE_ROWS, CONTENT, target=0.7) == (1, 0.5)
    # A stricter warm limit (2.5%): nothing reaches 80%, so the best cold recall within it.
    assert choose_exposure(EXPOSURE_ROWS, CONTENT, max_warm_loss=0.025) == (1, 0.5)
    # No warm loss at all: only no slots.
    assert choose_exposure(EXPOSURE_ROWS, CONTENT, max_warm_loss=0.0) == (0, 0.0)


def test_a_tie_goes_to_fewer_slots_then_the_higher_minimum_score():
    rows = [
        _point(0, 0.0, 0.1, 0.01),
        _point(2, 0.5, 0.1, 0.09),
        _point(1, 0.4, 0.1, 0.09),
        _point(1, 0.5, 0.1, 0.09),
    ]
    assert choose_exposure(rows, CONTENT) == (1, 0.5)


def test_the_default_is_the_best_worst_case_over_datasets():
    a = [
        _point(0, 0.0, 0.10, 0.01),
        _point(1, 0.5, 0.099, 0.09),  # Reaches 80% on A at 1% warm loss...
        _point(2, 0.5, 0.097, 0.12),
    ]
    b = [
        _point(0, 0.0, 0.050, 0.00),
        _point(1, 0.5, 0.049, 0.05),  # ... but not on B.
        _point(2, 0.5, 0.048, 0.09),  # Reaches 80% on both: 3% and 4% warm loss.
    ]
    sweeps = {"a": (a, CONTENT), "b": (b, CONTENT)}
    assert choose_exposure_default(sweeps) == (2, 0.5)
    assert choose_exposure(a, CONTENT) == (1, 0.5)
    # Nothing reaches the target on both: the best worst case of cold recall within the limit.
    sweeps["b"] = (b, {"content_cold_recall@10": 0.2})
    assert choose_exposure_default(sweeps) == (2, 0.5)
    sweeps["b"] = ([*b[:2], _point(2, 0.5, 0.045, 0.09)], CONTENT)  # 10% warm loss on B.
    assert choose_exposure_default(sweeps) == (1, 0.5)
