"""Plotly figures of the dashboard, as plain dicts for ``{{ spec|json_script:"id" }}``.

Figures are built here, in Python, and drawn by ``static/recsite/dashboard.js``; a chart with no
data is ``None`` and the template says so instead of drawing empty axes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import plotly.graph_objects as go

from recommender.selectors.dashboard import DailyCount

Spec = dict[str, Any]

_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 320,
    "margin": {"t": 40, "r": 20, "b": 40, "l": 55},
    "legend": {"orientation": "h", "y": -0.18},
    "font": {"family": "system-ui, sans-serif", "size": 12},
}


def figure_spec(fig: go.Figure) -> Spec:
    """A figure as the JSON-ready dict the page script draws (``data`` and ``layout``)."""
    spec: Spec = json.loads(fig.to_json())
    return {"data": spec.get("data", []), "layout": spec.get("layout", {})}


def events_per_day_chart(rows: Sequence[DailyCount]) -> Spec | None:
    """Stacked bars: events per day, one colour per event type."""
    if not rows:
        return None
    by_type: dict[str, dict[date, int]] = defaultdict(dict)
    days = sorted({row.day for row in rows})
    for row in rows:
        by_type[row.key][row.day] = row.count
    fig = go.Figure(
        [
            go.Bar(
                name=kind,
                x=[d.isoformat() for d in days],
                y=[counts.get(d, 0) for d in days],
            )
            for kind, counts in sorted(by_type.items())
        ]
    )
    fig.update_layout(_LAYOUT, title="Events per day by type", barmode="stack")
    return figure_spec(fig)


def active_customers_chart(
    daily: Sequence[tuple[date, int]], weekly: Sequence[tuple[date, int]]
) -> Spec | None:
    """Active customers per day (line) and per week (bars, on their own axis)."""
    if not daily and not weekly:
        return None
    fig = go.Figure()
    if weekly:
        fig.add_trace(
            go.Bar(
                name="per week",
                x=[d.isoformat() for d, _ in weekly],
                y=[n for _, n in weekly],
                marker={"color": "rgba(47,111,222,0.25)"},
                yaxis="y2",
            )
        )
    if daily:
        fig.add_trace(
            go.Scatter(
                name="per day",
                x=[d.isoformat() for d, _ in daily],
                y=[n for _, n in daily],
                mode="lines",
                line={"color": "#2f6fde"},
            )
        )
    fig.update_layout(
        _LAYOUT,
        title="Active customers",
        yaxis={"title": "per day"},
        yaxis2={"title": "per week", "overlaying": "y", "side": "right", "showgrid": False},
    )
    return figure_spec(fig)


def coverage_chart(*, embedded: int, active: int) -> Spec | None:
    """Donut: active products with and without a current embedding."""
    if not active:
        return None
    fig = go.Figure(
        go.Pie(
            labels=["embedded", "not embedded"],
            values=[embedded, max(active - embedded, 0)],
            hole=0.6,
            sort=False,
            marker={"colors": ["#13795b", "#d9dee8"]},
        )
    )
    fig.update_layout(_LAYOUT, title="Embedding coverage (active products)", showlegend=True)
    return figure_spec(fig)


def source_scores_chart(components: Mapping[str, Mapping[str, float]]) -> Spec | None:
    """Stacked horizontal bars: each listed product's score split by source.

    ``components``: product label -> {source: weighted score}, in list order (best first).
    """
    if not components:
        return None
    labels = list(components)
    sources = sorted({s for parts in components.values() for s in parts})
    fig = go.Figure(
        [
            go.Bar(
                name=source,
                y=labels,
                x=[components[label].get(source, 0.0) for label in labels],
                orientation="h",
            )
            for source in sources
        ]
    )
    fig.update_layout(
        _LAYOUT,
        title="Final list: score by source",
        barmode="stack",
        height=max(260, 28 * len(labels) + 120),
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return figure_spec(fig)
