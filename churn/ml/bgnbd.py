"""The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

A customer buys at a Poisson rate lambda while alive; after each purchase they drop out with
probability p. Across customers lambda ~ Gamma(r, alpha) and p ~ Beta(a, b). A customer's history is
summarised as (x, t_x, T): repeat purchases, the time of the last purchase and the length of
the observation period, both measured from the first purchase. The four parameters are fitted
by maximum likelihood (equation 6 of the paper); the conditional expectation (equation 10),
P(alive) and the probability of no purchase in the next t follow in closed form.

Times are in whatever unit the caller uses consistently; :mod:`churn.ml` uses weeks, which keeps
alpha near 1 and the optimiser well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def log_likelihood(
    params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood (equation 6, in logs for numerical safety)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.full_like(a3, -np.inf)
    xr = x[repeat]
    a4[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return a1 + a2 + np.logaddexp(a3, a4)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *, penalizer: float = 0.0) -> BgNbdParams:
    """Maximum-likelihood parameters (L-BFGS-B over log parameters).

    ``penalizer`` adds ``penalizer * sum(params**2)`` to the mean negative log-likelihood, as
    ``lifetimes`` does; 0 is plain MLE.
    """
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("BG/NBD needs at least one customer")

    def objective(log_params: np.ndarray) -> float:
        p = np.exp(log_params)
        ll = log_likelihood(BgNbdParams(*p), x, t_x, T)
        return float(-ll.mean() + penalizer * np.sum(p**2))

    start = np.log(np.array([1.0, max(float(np.mean(T)), 1e-3) / 4, 1.0, 1.0]))
    result = optimize.minimize(objective, start, method="L-BFGS-B", bounds=[(-10.0, 10.0)] * 4)
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParams(float(r), float(alpha), float(a), float(b))


def _log_odds_dead(
    params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) for x > 0; -inf for x == 0 (never dead)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.full(len(x), -np.inf)
    m = x > 0
    out[m] = (
        np.log(a)
        - np.log(b + x[m] - 1)
        + (r + x[m]) * (np.log(alpha + T[m]) - np.log(alpha + t_x[m]))
    )
    return out


def p_alive(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still alive at T | x, t_x, T) (equation 11 of the paper)."""
    return special.expit(-_log_odds_dead(params, x, t_x, T))


def expected_purchases(
    params: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (equation 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1)
    body = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
    return head * body * p_alive(params, x, t_x, T)


def p_no_purchase(
    params: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(no purchase in (T, T+t] | x, t_x, T).

    Dead customers never buy; an alive one with rate lambda makes no purchase in t with
    probability exp(-lambda t) (dropping out only happens after a purchase), and lambda's
    posterior given alive is Gamma(r+x, alpha+T), so that term integrates to
    ((alpha+T)/(alpha+T+t))^(r+x).
    """
    alive = p_alive(params, x, t_x, T)
    quiet = np.exp((params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + t)))
    return (1.0 - alive) + alive * quiet


def simulate(
    params: BgNbdParams, T: np.ndarray, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for T each, from the BG/NBD generative story."""
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    p = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        now = 0.0
        count = 0
        while True:
            now += rng.exponential(1.0 / lam[i])
            if now > T[i]:
                break
            count += 1
            t_x[i] = now
            if rng.random() < p[i]:
                break
        x[i] = count
    return x, t_x
