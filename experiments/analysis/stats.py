"""Statistics of an experiment: ratio metrics with per-visitor clustered intervals (delta
method), lift against the control, the sample-ratio-mismatch check and the decision rule.

Every metric is a ratio of sums over visitors, ``sum(y_i) / sum(x_i)`` (x: a visitor's
impressions, y: their attributed clicks, carts, purchases, revenue or filled lists). A visitor's
impressions are not independent of each other, so the visitor is the unit: with n visitors,
means ``mx``, ``my``, sample variances ``vx``, ``vy`` and covariance ``cxy`` (n - 1 in the
denominator), the delta method gives

    R = my / mx,   Var(R) = (vy - 2 R cxy + R^2 vx) / (n mx^2).

The lift of a treatment t over the control c is ``Rt / Rc - 1`` with
``Var = Vt / Rc^2 + Rt^2 Vc / Rc^4`` (independent groups); the test of a difference is the
z-test of ``Rt - Rc`` with ``Var = Vt + Vc``. Intervals are 95% (z = 1.959964).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import chi2

Z95 = 1.959963984540054
ALPHA = 0.05
# The SRM check flags a p-value below this: strict, because a true mismatch is usually large
# and a false alarm stops an experiment.
SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class Sums:
    """Per-visitor sums of one variant and one metric: n visitors, sum x, sum x^2, sum y,
    sum y^2, sum x*y."""

    n: int
    x: float
    xx: float
    y: float
    yy: float
    xy: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """A ratio with its standard error and 95% interval (None where undefined)."""

    value: float | None
    se: float | None
    low: float | None
    high: float | None

    def scaled(self, factor: float) -> Estimate:
        def times(v: float | None) -> float | None:
            return None if v is None else v * factor

        return Estimate(times(self.value), times(self.se), times(self.low), times(self.high))


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against the control: relative lift with its interval, and the z-test of
    the difference."""

    lift: float | None
    low: float | None
    high: float | None
    z: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


@dataclass(frozen=True, slots=True)
class Srm:
    chi2: float
    p_value: float
    flagged: bool


def ratio(s: Sums) -> Estimate:
    """The ratio ``s.y / s.x`` with its delta-method standard error (None with fewer than two
    visitors or no impressions)."""
    if s.n == 0 or s.x <= 0:
        return Estimate(None, None, None, None)
    value = s.y / s.x
    if s.n < 2:
        return Estimate(value, None, None, None)
    mx, my = s.x / s.n, s.y / s.n
    vx = (s.xx - s.n * mx * mx) / (s.n - 1)
    vy = (s.yy - s.n * my * my) / (s.n - 1)
    cxy = (s.xy - s.n * mx * my) / (s.n - 1)
    variance = max(0.0, (vy - 2 * value * cxy + value * value * vx) / (s.n * mx * mx))
    se = math.sqrt(variance)
    return Estimate(value, se, value - Z95 * se, value + Z95 * se)


def compare(treatment: Estimate, control: Estimate) -> Comparison:
    """``treatment`` against ``control`` (see the module's formulas)."""
    t, c = treatment, control
    if t.value is None or c.value is None or t.se is None or c.se is None:
        return Comparison(None, None, None, None, None)
    if c.value == 0:
        lift = low = high = None
    else:
        lift = t.value / c.value - 1
        var = t.se**2 / c.value**2 + t.value**2 * c.se**2 / c.value**4
        low, high = lift - Z95 * math.sqrt(var), lift + Z95 * math.sqrt(var)
    se_diff = math.sqrt(t.se**2 + c.se**2)
    if se_diff == 0:
        z, p = None, None
    else:
        z = (t.value - c.value) / se_diff
        p = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(lift, low, high, z, p)


def srm(observed: Sequence[int], shares: Sequence[float]) -> Srm:
    """Pearson's chi-square test of the visitors per variant against the planned shares
    (percent); flagged below ``SRM_ALPHA``."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return Srm(0.0, 1.0, False)
    weight = sum(shares)
    expected = [total * share / weight for share in shares]
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(chi2.sf(stat, len(observed) - 1))
    return Srm(stat, p_value, p_value < SRM_ALPHA)


def guardrail_state(comparison: Comparison, *, max_drop_pct: float) -> str:
    """``breached`` when the lift's whole interval lies below ``-max_drop_pct`` percent,
    ``at risk`` when the estimate does, ``ok`` otherwise (``unknown`` without an estimate)."""
    if comparison.lift is None or comparison.high is None:
        return "unknown"
    limit = -max_drop_pct / 100
    if comparison.high < limit:
        return "breached"
    if comparison.lift < limit:
        return "at risk"
    return "ok"
