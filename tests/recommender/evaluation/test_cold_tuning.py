import pytest

from recommender.evaluation.cold_tuning import choose_share


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
