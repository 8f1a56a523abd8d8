"""`stedi-lake report`: the lake's health as one self-contained HTML page, pictures first.

Every script, style and picture is inside the page (plotly.js inline, figures as JSON drawn by
it), so it opens offline and fetches nothing. The numbers come from `lake_summary.summarise`.
"""

from html import escape
from typing import Any

from stedi_lakehouse.report import figures as figs

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; font-size: .9rem; } details { margin: .3rem 0; }
"""


def _figure_html(fig, name: str) -> str:
    fig.update_layout(margin={"l": 40, "r": 20, "t": 50, "b": 40}, template="plotly_white")
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{name}",  # sections have ids of their own
        config={"displaylogo": False},
    )
    return f'<figure class="chart" data-chart="{name}">{div}</figure>'


def unmet_html(summary: dict[str, Any]) -> str:
    if not summary["quality"]:
        return "<p class='note'>No expectation outcomes are recorded in this lake.</p>"
    items = [
        f"<li class='{level}'><b>{table}</b> ({level}): {escape(name)}</li>"
        for table, check in summary["quality"].items()
        for level, names in (("failed", check["failed"]), ("warning", check["warnings"]))
        for name in names
    ]
    return f"<ul id='unmet'>{''.join(items)}</ul>" if items else "<p>Every expectation met.</p>"


def tables_html(summary: dict[str, Any]) -> str:
    """Rows and Delta version per table: the numbers of `stedi-lake status --json`."""
    rows = []
    for name, t in summary["tables"].items():
        shown = ["-" if t[k] is None else f"{t[k]:,}" for k in ("rows", "version")]
        rows.append(
            f'<tr data-table="{name}"><td>{name}</td><td>{t["zone"]}</td>'
            f'<td class="n" data-rows="{t["rows"]}">{shown[0]}</td>'
            f'<td class="n" data-version="{t["version"]}">{shown[1]}</td></tr>'
        )
    head = "<tr><th>table</th><th>zone</th><th>rows</th><th>Delta version</th></tr>"
    return f'<table id="tables">{head}{"".join(rows)}</table>'


def dictionary_html(summary: dict[str, Any]) -> str:
    parts = []
    for entry in summary["dictionary"]:
        columns = "".join(
            f"<tr><td><code>{c['name']}</code></td><td>{c['type']}</td>"
            f"<td>{escape(c['meaning'])}</td></tr>"
            for c in entry["columns"]
        )
        parts.append(
            f"<details><summary><b>{entry['table']}</b> ({entry['zone']}): "
            f"{escape(entry['grain'])}</summary><table><tr><th>column</th><th>type</th>"
            f"<th>meaning</th></tr>{columns}</table></details>"
        )
    return "".join(parts)


def render(summary: dict[str, Any]) -> str:
    """The whole page, plotly.js included."""
    from plotly.offline import get_plotlyjs

    charts = [
        ("funnel", figs.funnel_figure),
        ("exclusions", figs.exclusions_figure),
        ("quarantine", figs.quarantine_figure),
        ("runs", figs.runs_figure),
        ("expectations", figs.expectations_figure),
        ("consent", figs.consent_figure),
        ("readings", figs.readings_figure),
        ("distributions", figs.distributions_figure),
    ]
    figures = {name: _figure_html(make(summary), name) for name, make in charts}
    script = get_plotlyjs().replace("</script", "<\\/script")
    sections = [
        ("Tables", tables_html(summary)),
        ("The funnel", figures["funnel"] + figures["exclusions"]),
        ("Quarantine", figures["quarantine"]),
        ("Runs", figures["runs"]),
        ("Expectations", figures["expectations"] + unmet_html(summary)),
        ("Consent", figures["consent"]),
        ("The training table", figures["readings"] + figures["distributions"]),
        ("Data dictionary", dictionary_html(summary)),
    ]
    body = "".join(
        f'<section id="{title.lower().replace(" ", "-")}"><h2>{title}</h2>{html}</section>'
        for title, html in sections
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>STEDI lake report</title><style>{STYLE}</style>"
        f"<script>{script}</script></head><body><h1>STEDI lake report</h1>"
        f"<p class='note'>{escape(summary['lake_root'])}</p>{body}</body></html>"
    )
