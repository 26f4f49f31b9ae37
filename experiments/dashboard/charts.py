"""Plotly figures of the experiment page: pure functions from selector output to a JSON-ready
dict (the page's script draws them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from experiments.models import Metric
from experiments.selectors import DailyPoint

Spec = dict[str, Any]
COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f")


def metric_by_day_chart(
    points: Sequence[DailyPoint], *, metric: str, variants: Sequence[str]
) -> Spec | None:
    """One line per variant: the metric on each day with its 95% interval as error bars."""
    chosen = [p for p in points if p.metric == metric and p.estimate.value is not None]
    if not chosen:
        return None
    traces = []
    for i, name in enumerate(variants):
        mine = [p for p in chosen if p.variant == name]
        if not mine:
            continue
        values = [p.estimate.value or 0.0 for p in mine]  # ``chosen`` holds values only.
        traces.append(
            go.Scatter(
                name=name,
                x=[p.day.isoformat() for p in mine],
                y=values,
                mode="lines+markers",
                line={"color": COLOURS[i % len(COLOURS)]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (p.estimate.high - v) if p.estimate.high is not None else 0
                        for p, v in zip(mine, values, strict=True)
                    ],
                    "arrayminus": [
                        (v - p.estimate.low) if p.estimate.low is not None else 0
                        for p, v in zip(mine, values, strict=True)
                    ],
                },
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        height=320,
        title=f"{Metric(metric).label} per day, with 95% intervals",
        legend={"orientation": "h", "y": -0.25},
    )
    spec: Spec = json.loads(fig.to_json())
    return {"data": spec.get("data", []), "layout": spec.get("layout", {})}
