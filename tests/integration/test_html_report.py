"""`stedi-lake report` on the sample lake, opened in a real headless Chromium: a page that loads
nothing but itself, logs no error, draws every picture, and shows the lake's numbers (those of
`stedi-lake status --json`, and the funnel's counts of the tables)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.contracts.tables import Dataset, landing_table, quarantine_table
from stedi_lakehouse.lake.tables import Lake
from tests.browser import Browser, chromium

CHARTS = [
    "funnel",
    "exclusions",
    "quarantine",
    "runs",
    "expectations",
    "consent",
    "readings",
    "distributions",
]


# Plotly draws asynchronously: wait (up to 20 s) until every figure has its SVG.
DRAWN = """new Promise(done => {
  const started = Date.now();
  const check = () => {
    const figures = [...document.querySelectorAll('figure.chart')];
    if (figures.every(f => f.querySelector('svg.main-svg')) || Date.now() - started > 20000) done();
    else setTimeout(check, 100);
  };
  check();
})"""


def invoke(*args: str):
    return CliRunner().invoke(app, [*args, "--profile", "test"])


@pytest.fixture(scope="module")
def sample_report(sample_runs, spark, test_settings, tmp_path_factory):
    root = sample_runs().root
    lake = Lake(spark, str(root), test_settings.catalog.database)
    page = tmp_path_factory.mktemp("report") / "report.html"
    result = invoke("report", "-l", str(root), "--out", str(page))
    assert result.exit_code == 0, result.output
    return lake, page


@pytest.fixture(scope="module")
def rendered(sample_report):
    """The page as Chromium shows it: what it requested, its errors, what it drew."""
    if chromium() is None:
        pytest.skip("chromium is not installed (`make test` installs it where it can: as root)")
    _, page = sample_report
    browser = Browser()
    try:
        browser.open(page.as_uri())
        browser.evaluate(DRAWN)
        drawn = browser.evaluate(
            "JSON.stringify({"
            "charts: [...document.querySelectorAll('figure.chart')].map(f => ["
            "  f.dataset.chart, f.querySelectorAll('svg.main-svg').length]),"
            "tables: Object.fromEntries([...document.querySelectorAll('#tables tr[data-table]')]"
            "  .map(r => [r.dataset.table, [r.cells[2].textContent, r.cells[3].textContent]])),"
            "funnel: document.getElementById('chart-funnel').data.map(t => [t.name, t.y, t.x]),"
            "unmet: [...document.querySelectorAll('#unmet li')].map(li => li.textContent),"
            "external: document.querySelectorAll('script[src], link[href], img[src], iframe')"
            "  .length,"
            "})"
        )
        return page, browser.requested(), browser.errors(), json.loads(drawn)
    finally:
        browser.close()


def test_chromium_requests_nothing_but_the_page(rendered):
    page, requested, _, drawn = rendered
    assert drawn["external"] == 0  # every script, style and picture inline
    assert [url for url in requested if not url.startswith("data:")] == [page.as_uri()]


def test_chromium_logs_no_error(rendered):
    _, _, errors, _ = rendered
    assert errors == []


def test_every_picture_is_drawn(rendered):
    _, _, _, drawn = rendered
    assert [name for name, _ in drawn["charts"]] == CHARTS
    assert all(svgs >= 1 for _, svgs in drawn["charts"]), drawn["charts"]


def test_the_numbers_shown_are_those_of_status_json(sample_report, rendered):
    lake, _ = sample_report
    _, _, _, drawn = rendered
    status = invoke("status", "-l", lake.root, "--json")
    assert status.exit_code == 0, status.output
    expected = {
        name: [
            "-" if t["rows"] is None else f"{t['rows']:,}",
            "-" if t["version"] is None else str(t["version"]),
        ]
        for name, t in json.loads(status.stdout)["tables"].items()
    }
    assert drawn["tables"] == expected
    # version 0 the rows, version 1 the key's fingerprint (a table property)
    assert drawn["tables"]["machine_learning_curated"] == ["221", "1"]
    quality = json.loads(status.stdout)["quality"]
    unmet = [
        f"{table} ({level}): {name}"
        for table, check in quality.items()
        for level, names in (("failed", check["failed"]), ("warning", check["warnings"]))
        for name in names
    ]
    assert drawn["unmet"] == unmet and len(unmet) == 4


def test_the_funnel_shows_the_tables_counts(sample_report, rendered):
    lake, _ = sample_report
    _, _, _, drawn = rendered
    funnel = {
        name: dict(zip(stages, counts, strict=True)) for name, stages, counts in drawn["funnel"]
    }
    for dataset in Dataset:
        accepted = lake.read(landing_table(dataset)).count()
        shown = funnel[str(dataset)]
        assert shown["read"] == accepted + lake.read(quarantine_table(dataset)).count()
        assert shown["accepted"] == accepted
        assert shown["trusted"] == lake.read(f"{dataset}_trusted").count()
    assert funnel["step_trainer"]["in machine_learning_curated"] == 221


def test_a_missing_lake_is_one_error_line(tmp_path):
    result = invoke("report", "-l", str(tmp_path / "none"), "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 1 and result.output.startswith("error: lake root ")
    assert not Path(tmp_path / "r.html").exists()
