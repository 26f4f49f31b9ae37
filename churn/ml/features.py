"""Churn features per customer as of a cutoff, computed from events only, and the label.

Every feature of a snapshot reads only events strictly before its cutoff, so an event at or
after the cutoff cannot change it (tests/churn/test_ml.py holds this). Times are days since the
Unix epoch (floats); a "transaction" is a day on which the customer bought something, the unit
of the BG/NBD model and of the inter-purchase statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from . import bgnbd

VIEW, CART, PURCHASE, OTHER = 0, 1, 2, 3

# Windows (days) of the activity counts; "recent" is the last RECENT days, "earlier" the
# RECENT days before those.
RECENT = 90.0
WINDOWS = (30.0, 90.0, 180.0)
_DAY_KEY = 1_000_000  # customer * _DAY_KEY + day: unique transaction keys (days < 1e6).

# Name, label for people, and the direction a person reads it in (for drivers).
FEATURES: tuple[tuple[str, str], ...] = (
    ("recency_days", "Days since the last purchase"),
    ("frequency", "Purchase days so far"),
    ("tenure_days", "Days since the first purchase"),
    ("purchase_rate", "Purchase days per 30 days of tenure"),
    ("recency_share", "Share of tenure since the last purchase"),
    ("monetary_total", "Total spent"),
    ("monetary_mean", "Average spend per purchase day"),
    ("recency_2_days", "Days since the purchase before the last"),
    ("active_period_share", "Share of 30-day periods since the first purchase with a purchase"),
    ("first_spend", "Spent on the first purchase day"),
    ("last_spend", "Spent on the last purchase day"),
    ("ipt_mean", "Average days between purchases"),
    ("ipt_std", "Spread of days between purchases"),
    ("ipt_last", "Days between the last two purchases"),
    ("ipt_trend", "Last gap relative to the average gap"),
    ("overdue", "Days since the last purchase relative to the average gap"),
    ("purchases_30d", "Purchase days in the last 30 days"),
    ("purchases_90d", "Purchase days in the last 90 days"),
    ("purchases_180d", "Purchase days in the last 180 days"),
    ("spend_90d", "Spent in the last 90 days"),
    ("recent_vs_earlier", "Purchases in the last 90 days vs the 90 days before (log ratio)"),
    ("views_90d", "Views in the last 90 days"),
    ("carts_90d", "Add-to-carts in the last 90 days"),
    ("browse_share", "Share of events that are not purchases"),
    ("cart_abandon_share_90d", "Share of carted-or-bought lines in 90 days left in the cart"),
    ("activity_recency_days", "Days since any activity"),
    ("basket_lines", "Average products per purchase day"),
    ("basket_quantity", "Average units per purchase day"),
    ("product_breadth", "Distinct products bought"),
    ("category_breadth", "Distinct categories bought"),
    ("interest_drift", "Interest drift (1 - cosine, earlier vs last 90 days)"),
    ("bgnbd_p_alive", "BG/NBD probability of being active"),
    ("bgnbd_expected", "BG/NBD expected purchases in the horizon"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)
FEATURE_LABELS: dict[str, str] = dict(FEATURES)
# Recency, frequency and tenure: the inputs of the RFM logistic-regression baseline.
RFM_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "tenure_days")


@dataclass(frozen=True)
class EventLog:
    """Every event, as parallel arrays sorted by time, plus what is known about products.

    ``customer`` indexes ``customer_ids``; ``product`` indexes ``product_category`` and the rows
    of ``product_vectors`` (-1: no product). ``value`` is NaN where unknown. ``product_vectors``
    are L2-normalised rows (a zero row: no vector), or None when no embeddings exist.
    """

    customer: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    value: np.ndarray
    customer_ids: tuple[int, ...]
    product_category: np.ndarray
    product_vectors: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        *,
        customer: np.ndarray,
        time: np.ndarray,
        kind: np.ndarray,
        product: np.ndarray,
        quantity: np.ndarray,
        value: np.ndarray,
        customer_ids: tuple[int, ...],
        product_category: np.ndarray,
        product_vectors: np.ndarray | None = None,
    ) -> EventLog:
        order = np.argsort(np.asarray(time, dtype=np.float64), kind="stable")
        return cls(
            customer=np.asarray(customer, dtype=np.int64)[order],
            time=np.asarray(time, dtype=np.float64)[order],
            kind=np.asarray(kind, dtype=np.int8)[order],
            product=np.asarray(product, dtype=np.int64)[order],
            quantity=np.asarray(quantity, dtype=np.float64)[order],
            value=np.asarray(value, dtype=np.float64)[order],
            customer_ids=tuple(customer_ids),
            product_category=np.asarray(product_category, dtype=np.int64),
            product_vectors=product_vectors,
        )

    def __len__(self) -> int:
        return len(self.time)

    @property
    def first_time(self) -> float:
        return float(self.time[0]) if len(self.time) else 0.0

    @property
    def last_time(self) -> float:
        return float(self.time[-1]) if len(self.time) else 0.0

    def until(self, cutoff: float) -> EventLog:
        """The events strictly before ``cutoff``: the only ones a snapshot may read."""
        end = int(np.searchsorted(self.time, cutoff, side="left"))
        return EventLog(
            customer=self.customer[:end],
            time=self.time[:end],
            kind=self.kind[:end],
            product=self.product[:end],
            quantity=self.quantity[:end],
            value=self.value[:end],
            customer_ids=self.customer_ids,
            product_category=self.product_category,
            product_vectors=self.product_vectors,
        )


@dataclass(frozen=True)
class Snapshot:
    """Features of the customers with a purchase before ``cutoff``, one row each."""

    cutoff: float
    horizon: float
    customers: np.ndarray  # indexes into EventLog.customer_ids
    X: np.ndarray  # (len(customers), len(FEATURE_NAMES)), NaN where undefined
    bgnbd_params: bgnbd.BgNbdParams | None

    def column(self, name: str) -> np.ndarray:
        return self.X[:, FEATURE_NAMES.index(name)]


def _per_customer(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, weights=values, minlength=n)[:n]


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(len(a), np.nan)
    ok = b > 0
    out[ok] = a[ok] / b[ok]
    return out


@dataclass(frozen=True)
class _Purchases:
    """The purchase lines of a snapshot's customers and their transactions (customer, day);
    transaction keys are sorted by customer, then day."""

    n: int  # Customers of the snapshot.
    row: np.ndarray  # Per line: the customer's row.
    time: np.ndarray
    product: np.ndarray
    t_row: np.ndarray  # Per transaction: the customer's row, the day, lines, quantity, value.
    t_day: np.ndarray
    t_lines: np.ndarray
    t_qty: np.ndarray
    t_value: np.ndarray


def snapshot(log: EventLog, *, cutoff: float, horizon: float) -> Snapshot:
    """Features as of ``cutoff`` (days since the epoch) of every customer who bought before it.

    ``horizon`` (days) only sets the horizon of the BG/NBD expected-purchases feature.
    """
    past = log.until(cutoff)
    is_purchase = past.kind == PURCHASE
    p_cust = past.customer[is_purchase]
    customers = np.unique(p_cust)
    n = len(customers)
    if n == 0:
        return Snapshot(cutoff, horizon, customers, np.empty((0, len(FEATURE_NAMES))), None)
    # Dense row index per customer of this snapshot; -1 for customers without a purchase.
    row_of = np.full(len(log.customer_ids), -1, dtype=np.int64)
    row_of[customers] = np.arange(n)
    purchases = _purchases(past, is_purchase, row_of, n)
    columns = _purchase_columns(purchases, cutoff)
    columns.update(_order_columns(purchases, cutoff, tenure=columns["tenure_days"]))
    columns.update(_browsing_columns(past, row_of, n, cutoff))
    columns.update(_breadth_columns(log, purchases))
    columns["interest_drift"] = _interest_drift(log, past, row_of, n, cutoff)
    bgnbd_columns, params = _bgnbd_columns(
        purchases, columns["frequency"], cutoff=cutoff, horizon=horizon
    )
    columns.update(bgnbd_columns)
    X = np.column_stack([columns[name] for name in FEATURE_NAMES]).astype(np.float64)
    return Snapshot(cutoff, horizon, customers, X, params)


def _purchases(past: EventLog, is_purchase: np.ndarray, row_of: np.ndarray, n: int) -> _Purchases:
    """Purchase lines -> transactions (customer, day)."""
    p_time = past.time[is_purchase]
    p_row = row_of[past.customer[is_purchase]]
    p_value = np.nan_to_num(past.value[is_purchase], nan=0.0)
    p_qty = past.quantity[is_purchase]
    keys = p_row * _DAY_KEY + np.floor(p_time).astype(np.int64)
    t_keys, t_inv = np.unique(keys, return_inverse=True)
    n_t = len(t_keys)
    return _Purchases(
        n=n,
        row=p_row,
        time=p_time,
        product=past.product[is_purchase],
        t_row=t_keys // _DAY_KEY,
        t_day=(t_keys % _DAY_KEY).astype(np.float64),
        t_lines=np.bincount(t_inv, minlength=n_t).astype(np.float64),
        t_qty=np.bincount(t_inv, weights=p_qty, minlength=n_t),
        t_value=np.bincount(t_inv, weights=p_value, minlength=n_t),
    )


def _purchase_columns(p: _Purchases, cutoff: float) -> dict[str, np.ndarray]:
    """Recency, frequency, tenure, money, the gaps between purchase days and the windows."""
    n, t_row, t_day = p.n, p.t_row, p.t_day
    first = np.full(n, np.inf)
    np.minimum.at(first, p.row, p.time)
    last = np.full(n, -np.inf)
    np.maximum.at(last, p.row, p.time)
    frequency = np.bincount(t_row, minlength=n).astype(np.float64)
    recency = cutoff - last
    tenure = cutoff - first

    # Gaps between consecutive purchase days of the same customer.
    same = t_row[1:] == t_row[:-1]
    gaps = np.diff(t_day)[same]
    g_row = t_row[1:][same]
    n_gaps = np.bincount(g_row, minlength=n).astype(np.float64)
    ipt_mean = _safe_div(_per_customer(gaps, g_row, n), n_gaps)
    gap_sq = _safe_div(_per_customer(gaps**2, g_row, n), n_gaps)
    ipt_std = np.sqrt(np.maximum(gap_sq - ipt_mean**2, 0.0))
    ipt_std[n_gaps < 2] = np.nan
    ipt_last = np.full(n, np.nan)
    latest = np.r_[g_row[1:] != g_row[:-1], True] if len(g_row) else np.zeros(0, dtype=bool)
    ipt_last[g_row[latest]] = gaps[latest]

    def purchase_days_within(days: float) -> np.ndarray:
        recent = t_day >= np.floor(cutoff - days)
        return np.bincount(t_row[recent], minlength=n).astype(np.float64)

    counts = {w: purchase_days_within(w) for w in WINDOWS}
    earlier = counts[2 * RECENT] - counts[RECENT] if 2 * RECENT in counts else None
    recent_vs_earlier = (
        np.log((counts[RECENT] + 1) / (earlier + 1)) if earlier is not None else np.zeros(n)
    )
    recent_t = t_day >= np.floor(cutoff - RECENT)
    monetary_total = np.bincount(t_row, weights=p.t_value, minlength=n)
    return {
        "recency_days": recency,
        "frequency": frequency,
        "tenure_days": tenure,
        "purchase_rate": 30.0 * frequency / np.maximum(tenure, 1.0),
        "recency_share": recency / np.maximum(tenure, 1e-9),
        "monetary_total": monetary_total,
        "monetary_mean": monetary_total / frequency,
        "ipt_mean": ipt_mean,
        "ipt_std": ipt_std,
        "ipt_last": ipt_last,
        "ipt_trend": _safe_div(ipt_last, ipt_mean),
        "overdue": _safe_div(recency, ipt_mean),
        "purchases_30d": counts[30.0],
        "purchases_90d": counts[90.0],
        "purchases_180d": counts[180.0],
        "spend_90d": np.bincount(t_row[recent_t], weights=p.t_value[recent_t], minlength=n),
        "recent_vs_earlier": recent_vs_earlier,
        "basket_lines": _per_customer(p.t_lines, t_row, n) / frequency,
        "basket_quantity": _per_customer(p.t_qty, t_row, n) / frequency,
    }


def _order_columns(p: _Purchases, cutoff: float, *, tenure: np.ndarray) -> dict[str, np.ndarray]:
    """Second-to-last purchase day, first and last day's spend, active 30-day periods."""
    n, t_row, t_day = p.n, p.t_row, p.t_day
    is_last = np.r_[t_row[1:] != t_row[:-1], True]
    is_first = np.r_[True, t_row[1:] != t_row[:-1]]
    recency_2 = np.full(n, np.nan)
    second = np.r_[is_last[1:], False] & ~is_last
    recency_2[t_row[second]] = cutoff - t_day[second]
    first_spend = np.zeros(n)
    first_spend[t_row[is_first]] = p.t_value[is_first]
    last_spend = np.zeros(n)
    last_spend[t_row[is_last]] = p.t_value[is_last]
    periods = np.unique(t_row * _DAY_KEY + np.floor((cutoff - t_day) / 30.0).astype(np.int64))
    active_periods = np.bincount(periods // _DAY_KEY, minlength=n).astype(float)
    return {
        "recency_2_days": recency_2,
        "active_period_share": active_periods / np.maximum(np.ceil(tenure / 30.0), 1.0),
        "first_spend": first_spend,
        "last_spend": last_spend,
    }


def _browsing_columns(
    past: EventLog, row_of: np.ndarray, n: int, cutoff: float
) -> dict[str, np.ndarray]:
    """Every event type, for the browsing signals."""
    a_row = row_of[past.customer]
    known = a_row >= 0  # Only customers of the snapshot (with a purchase) get rows.
    a_row, a_kind, a_time = a_row[known], past.kind[known], past.time[known]
    in_recent = a_time >= cutoff - RECENT
    views_90 = np.bincount(a_row[in_recent & (a_kind == VIEW)], minlength=n).astype(float)
    carts_90 = np.bincount(a_row[in_recent & (a_kind == CART)], minlength=n).astype(float)
    bought_90 = np.bincount(a_row[in_recent & (a_kind == PURCHASE)], minlength=n).astype(float)
    all_events = np.bincount(a_row, minlength=n).astype(float)
    purchases_all = np.bincount(a_row[a_kind == PURCHASE], minlength=n).astype(float)
    last_any = np.full(n, -np.inf)
    np.maximum.at(last_any, a_row, a_time)
    return {
        "views_90d": views_90,
        "carts_90d": carts_90,
        "browse_share": 1.0 - purchases_all / np.maximum(all_events, 1.0),
        "cart_abandon_share_90d": _safe_div(
            np.maximum(carts_90 - bought_90, 0.0), carts_90 + bought_90
        ),
        "activity_recency_days": cutoff - last_any,
    }


def _breadth_columns(log: EventLog, p: _Purchases) -> dict[str, np.ndarray]:
    """Breadth of what they bought: distinct products and categories."""
    n, p_row, p_prod = p.n, p.row, p.product
    has_prod = p_prod >= 0
    pairs = np.unique(p_row[has_prod] * (len(log.product_category) + 1) + p_prod[has_prod])
    product_breadth = np.bincount(pairs // (len(log.product_category) + 1), minlength=n).astype(
        float
    )
    cats = np.where(has_prod, log.product_category[np.where(has_prod, p_prod, 0)], -1)
    has_cat = cats >= 0
    n_cats = int(log.product_category.max()) + 2 if len(log.product_category) else 1
    cat_pairs = np.unique(p_row[has_cat] * n_cats + cats[has_cat])
    category_breadth = np.bincount(cat_pairs // n_cats, minlength=n).astype(float)
    return {"product_breadth": product_breadth, "category_breadth": category_breadth}


def _bgnbd_columns(
    p: _Purchases, frequency: np.ndarray, *, cutoff: float, horizon: float
) -> tuple[dict[str, np.ndarray], bgnbd.BgNbdParams | None]:
    """BG/NBD summary (x, t_x, T) in weeks, fitted on this snapshot alone."""
    n, t_row, t_day = p.n, p.t_row, p.t_day
    x = frequency - 1
    first_day = np.full(n, np.inf)
    np.minimum.at(first_day, t_row, t_day)
    last_day = np.full(n, -np.inf)
    np.maximum.at(last_day, t_row, t_day)
    t_x = (last_day - first_day) / 7.0
    T = np.maximum((cutoff - first_day) / 7.0, t_x)
    params = bgnbd.fit(x, t_x, T) if n >= 20 else None
    if params is not None:
        alive = bgnbd.p_alive(params, x, t_x, T)
        expected = bgnbd.expected_purchases(params, horizon / 7.0, x, t_x, T)
    else:
        alive = expected = np.full(n, np.nan)
    return {"bgnbd_p_alive": alive, "bgnbd_expected": expected}, params


def _interest_drift(
    log: EventLog, past: EventLog, row_of: np.ndarray, n: int, cutoff: float
) -> np.ndarray:
    """1 - cosine between the centroid of the product vectors a customer touched before the
    last RECENT days and the centroid of those touched in them; NaN when either is empty."""
    vectors = log.product_vectors
    out = np.full(n, np.nan)
    if vectors is None or len(vectors) == 0:
        return out
    rows = row_of[past.customer]
    ok = (rows >= 0) & (past.product >= 0)
    rows, prods, times = rows[ok], past.product[ok], past.time[ok]
    recent = times >= cutoff - RECENT
    n_products = len(vectors)

    def centroids(mask: np.ndarray) -> np.ndarray:
        m = sparse.csr_matrix(
            (np.ones(int(mask.sum())), (rows[mask], prods[mask])), shape=(n, n_products)
        )
        return np.asarray(m @ vectors, dtype=np.float64)

    old, new = centroids(~recent), centroids(recent)
    norms = np.linalg.norm(old, axis=1) * np.linalg.norm(new, axis=1)
    ok_rows = norms > 0
    out[ok_rows] = 1.0 - np.einsum("ij,ij->i", old[ok_rows], new[ok_rows]) / norms[ok_rows]
    return out


def churn_labels(log: EventLog, snap: Snapshot, *, horizon: float) -> np.ndarray:
    """1 for a customer of ``snap`` who makes no purchase in [cutoff, cutoff + horizon)."""
    start = int(np.searchsorted(log.time, snap.cutoff, side="left"))
    end = int(np.searchsorted(log.time, snap.cutoff + horizon, side="left"))
    window = slice(start, end)
    buyers = np.unique(log.customer[window][log.kind[window] == PURCHASE])
    return (~np.isin(snap.customers, buyers)).astype(np.int8)
