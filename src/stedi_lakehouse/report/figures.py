"""The pictures of `stedi-lake report`: one plotly figure per question a person asks of the
lake, each from the plain data of `lake_summary.summarise`."""

from collections import Counter
from typing import Any

FEED_COLOURS = {"customer": "#4C78A8", "accelerometer": "#F58518", "step_trainer": "#54A24B"}
OUTCOME_COLOURS = {"succeeded": "#54A24B", "failed": "#E45756"}


def funnel_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    feeds = list(summary["funnel"])
    fig = make_subplots(rows=1, cols=len(feeds), subplot_titles=feeds)
    for i, feed in enumerate(feeds, start=1):
        labels, values = zip(*summary["funnel"][feed], strict=True)
        fig.add_trace(
            go.Funnel(
                y=list(labels),
                x=list(values),
                name=feed,
                marker={"color": FEED_COLOURS.get(feed)},
                textinfo="value+percent initial",
            ),
            row=1,
            col=i,
        )
    fig.update_layout(title="From landing to curated, per feed", showlegend=False, height=380)
    return fig


def exclusions_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go

    totals: dict[str, Counter] = {}
    for run in summary["runs"]:
        for feed, reasons in run["excluded"].items():
            totals.setdefault(feed, Counter()).update(reasons)
    reasons = sorted({r for c in totals.values() for r in c})
    fig = go.Figure(
        [go.Bar(name=r, x=list(totals), y=[totals[f][r] for f in totals]) for r in reasons]
    )
    fig.update_layout(
        title="Kept out of trusted, by reason (summed over the recorded runs)",
        barmode="stack",
        height=360,
    )
    return fig


def quarantine_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go

    fig = go.Figure()
    for feed, reasons in summary["quarantine_reasons"].items():
        fig.add_trace(
            go.Bar(
                name=feed,
                y=list(reasons),
                x=list(reasons.values()),
                orientation="h",
                marker={"color": FEED_COLOURS.get(feed)},
            )
        )
    rows = sum(len(r) for r in summary["quarantine_reasons"].values())
    fig.update_layout(
        title="Quarantined lines by rule broken",
        barmode="stack",
        height=max(320, 22 * rows),
        yaxis={"autorange": "reversed"},
    )
    return fig


def runs_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    runs = summary["runs"]
    when = [r["started_at"] for r in runs]
    colours = [OUTCOME_COLOURS.get(r["outcome"], "#999") for r in runs]
    hover = [f"{r['run_id'][:8]} {r['outcome']}" for r in runs]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=["records", "seconds"])
    fig.add_trace(
        go.Bar(x=when, y=[r["records"] for r in runs], marker={"color": colours}, hovertext=hover),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=when,
            y=[r["seconds"] for r in runs],
            mode="markers+lines",
            marker={"color": colours, "size": 10},
            hovertext=hover,
        ),
        row=2,
        col=1,
    )
    fig.update_layout(
        title="Runs over time (green: succeeded, red: failed)", showlegend=False, height=420
    )
    return fig


def expectations_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go

    checks = summary["quality"]
    tables = list(checks)
    warned = [len(checks[t]["warnings"]) for t in tables]
    failed = [len(checks[t]["failed"]) for t in tables]
    met = [
        checks[t]["expectations"] - w - f for t, w, f in zip(tables, warned, failed, strict=True)
    ]
    fig = go.Figure(
        [
            go.Bar(name=name, y=tables, x=counts, orientation="h", marker_color=colour)
            for name, counts, colour in (
                ("met", met, "#54A24B"),
                ("warned", warned, "#EECA3B"),
                ("failed", failed, "#E45756"),
            )
        ]
    )
    fig.update_layout(
        title="Expectations at each table's latest check",
        barmode="stack",
        height=120 + 28 * len(tables),
        yaxis={"autorange": "reversed"},
    )
    return fig


def consent_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go

    consent = summary["consent"]
    fig = go.Figure(
        go.Bar(
            x=list(consent),
            y=list(consent.values()),
            text=list(consent.values()),
            marker={"color": ["#4C78A8", "#54A24B", "#EECA3B"]},
        )
    )
    fig.update_layout(title="Consent: customers, consenting, consented after registering")
    fig.update_layout(height=340)
    return fig


def readings_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go

    fig = go.Figure(go.Histogram(x=summary["ml"]["readings_per_person"], marker_color="#72B7B2"))
    fig.update_layout(
        title="Readings per person in machine_learning_curated",
        xaxis_title="rows of one subject_key",
        yaxis_title="people",
        height=340,
    )
    return fig


def _without_far_outliers(values: list) -> tuple[list, int, float]:
    """(values drawn, how many left out, above what): a few extreme values (the sample's
    distance 2**63-1) would squeeze every other value into one bar."""
    ordered = sorted(values)
    if not ordered:
        return ordered, 0, 0.0
    cut = ordered[int(0.99 * (len(ordered) - 1))]
    if ordered[-1] <= 10 * abs(cut) + 1:
        return ordered, 0, cut
    kept = [v for v in ordered if v <= cut]
    return kept, len(ordered) - len(kept), cut


def distributions_figure(summary: dict[str, Any]):
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    shown = {
        column: _without_far_outliers(data) for column, data in summary["ml"]["values"].items()
    }
    titles = [
        column + (f" ({n:,} above {cut:g} not drawn)" if n else "")
        for column, (_, n, cut) in shown.items()
    ]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles)
    for i, (column, (data, _, _)) in enumerate(shown.items()):
        fig.add_trace(go.Histogram(x=data, name=column), row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(title="Values in machine_learning_curated", showlegend=False, height=520)
    return fig
