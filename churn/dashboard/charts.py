"""Plotly figures of the churn pages: pure functions from selector output to a JSON-ready dict."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

from churn.models import ChurnScore, RiskBand
from churn.selectors import BandCounts

Spec = dict[str, Any]

BAND_COLOURS = {RiskBand.LOW: "#2e7d32", RiskBand.MEDIUM: "#f9a825", RiskBand.HIGH: "#c62828"}
METHOD_LABELS = {
    "model": "Churn model (calibrated)",
    "bgnbd": "BG/NBD",
    "rfm_logreg": "RFM logistic regression",
}
METHOD_COLOURS = {"model": "#1565c0", "bgnbd": "#6a1b9a", "rfm_logreg": "#ef6c00"}


def _spec(fig: go.Figure) -> Spec:
    spec: Spec = json.loads(fig.to_json())
    return {"data": spec.get("data", []), "layout": spec.get("layout", {})}


def risk_over_time_chart(history: Sequence[BandCounts]) -> Spec | None:
    """Stacked bars: customers per risk band, one bar per scoring run."""
    if not history:
        return None
    x = [f"{run.as_of:%Y-%m-%d} · {run.model_version[-10:]}" for run in history]
    fig = go.Figure(
        [
            go.Bar(
                name=RiskBand(band).label,
                x=x,
                y=[run.counts.get(band, 0) for run in history],
                marker_color=BAND_COLOURS[RiskBand(band)],
            )
            for band in (RiskBand.LOW, RiskBand.MEDIUM, RiskBand.HIGH)
        ]
    )
    fig.update_layout(
        barmode="stack",
        height=320,
        title="Customers per risk band, by scoring run (as of · model)",
        yaxis_title="customers",
        legend={"orientation": "h", "y": -0.25},
    )
    return _spec(fig)


def _curves_chart(
    backtest: dict[str, Any],
    *,
    x: str,
    y: str,
    label: Callable[[dict[str, Any]], str],
    mode: str,
    diagonal: str,
    title: str,
    x_title: str,
    y_title: str,
) -> Spec | None:
    """One line per method from a stored backtest's curves, with the diagonal for reference."""
    methods = backtest.get("methods") or {}
    if not methods:
        return None
    fig = go.Figure()
    for key, metrics in methods.items():
        curves = metrics["curves"]
        fig.add_trace(
            go.Scatter(
                x=curves[x],
                y=curves[y],
                mode=mode,
                name=f"{METHOD_LABELS.get(key, key)} ({label(metrics)})",
                line={"color": METHOD_COLOURS.get(key)},
            )
        )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=diagonal,
                   line={"dash": "dot", "color": "#9e9e9e"})
    )  # fmt: skip
    fig.update_layout(
        height=360,
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.3},
    )
    return _spec(fig)


def roc_chart(backtest: dict[str, Any]) -> Spec | None:
    """ROC curves of the model and the baselines from a stored backtest."""
    return _curves_chart(
        backtest,
        x="roc_fpr",
        y="roc_tpr",
        label=lambda metrics: f"AUC {metrics['roc_auc']:.3f}",
        mode="lines",
        diagonal="chance",
        title="ROC: who churned, ranked by each method",
        x_title="false positive rate",
        y_title="true positive rate",
    )


def calibration_chart(backtest: dict[str, Any]) -> Spec | None:
    """Predicted vs observed churn rate per decile of each method's probability."""
    return _curves_chart(
        backtest,
        x="calibration_predicted",
        y="calibration_observed",
        label=lambda metrics: f"Brier {metrics['brier']:.3f}",
        mode="lines+markers",
        diagonal="perfect",
        title="Calibration: predicted vs observed churn",
        x_title="predicted probability (decile mean)",
        y_title="observed churn rate",
    )


def sparkline(scores: Sequence[ChurnScore]) -> Spec | None:
    """A customer's risk over their scoring runs, small; None below two runs."""
    if len(scores) < 2:
        return None
    fig = go.Figure(
        go.Scatter(
            x=[s.as_of.isoformat() for s in scores],
            y=[round(s.score, 4) for s in scores],
            mode="lines+markers",
            line={"color": "#1565c0"},
            name="risk",
        )
    )
    fig.update_layout(
        height=140,
        margin={"t": 10, "r": 10, "b": 30, "l": 40},
        yaxis={"range": [0, 1], "title": None},
        showlegend=False,
    )
    return _spec(fig)
