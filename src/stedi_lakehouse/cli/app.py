"""`stedi-lake`: thin commands over the library. Nothing here starts the JVM until a command
needs Spark, so --help, --version and argument errors answer at once."""

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from stedi_lakehouse import __version__
from stedi_lakehouse.cli.server import app as server_app
from stedi_lakehouse.errors import ENDPOINT_LOST, StediError, failure_text, lost_endpoint
from stedi_lakehouse.ml.export import Format
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import Settings, load_settings

app = typer.Typer(
    help="STEDI lakehouse: landing -> trusted -> curated Delta tables, privacy first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(server_app, name="server")
out = Console()
err = Console(stderr=True)


class Stage(StrEnum):
    TRUSTED = "trusted"
    CURATED = "curated"
    ALL = "all"


LakeRoot = Annotated[
    str | None,
    typer.Option("--lake-root", "-l", help="Lake folder or s3:// URI (default: from the profile)."),
]
RulesOption = Annotated[
    Rules | None,
    typer.Option("--rules", "-r", case_sensitive=False, help="Rules preset (default: privacy)."),
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", "-p", help="Settings profile conf/<name>.yaml (default: local)."),
]
Remote = Annotated[
    str | None,
    typer.Option(
        "--remote",
        envvar="STEDI_REMOTE",
        help="Run through this Spark Connect endpoint (sc://HOST:PORT/;token=...) instead of "
        "the lake's server (`stedi-lake server start`) or an in-process Spark.",
    ),
]


def fail(message: str) -> typer.Exit:
    """Print one error line on stderr; the caller raises the returned Exit (code 1)."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """A user mistake ends with one line on stderr and exit code 1, never a traceback."""
    # PySpark logs every failed SQL statement (as JSON, with the Java stack) before raising.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    try:
        yield
    except StediError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        if lost_endpoint(exc):
            # the session's open results then fail to close as Python exits: known, and noise
            sys.unraisablehook = lambda unraisable: None
            raise fail(ENDPOINT_LOST) from None
        if isinstance(exc, OSError) and exc.filename:  # a path given that cannot be used
            raise fail(f"{exc.strerror or exc}: {exc.filename}") from None
        # a failure in the JVM: here (py4j), or in a Spark Connect server
        served = type(exc).__module__ == "pyspark.errors.exceptions.connect"
        if getattr(exc, "java_exception", None) is None and not served:
            raise
        # Spark's own message may quote a record: named by its classes only
        raise fail(f"Spark failed: {failure_text(exc)} (the JVM's log has the details)") from None


def _version(value: bool) -> None:
    if value:
        out.print(f"stedi-lake {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """STEDI lakehouse: landing -> trusted -> curated Delta tables, privacy first."""


def _settings(
    profile: str | None,
    lake_root: str | None,
    rules: Rules | None = None,
    remote: str | None = None,
) -> Settings:
    return load_settings(profile, lake_root=lake_root, rules=rules, remote=remote)


def _key(settings: Settings) -> bytes | None:
    """The pseudonym key (see keys.py); a key made now is announced with where it is kept."""
    key = settings.resolved_key()
    if key is not None and key.created:
        err.print(
            f"made a pseudonym key for this user's local lakes: {key.source} (mode 0600; keep "
            "it: subject keys and erasures depend on it)",
            highlight=False,
            soft_wrap=True,
        )
    return key.secret if key else None


def _open(settings: Settings):
    """The lake on a started Spark, a progress callback and the status line it updates."""
    from stedi_lakehouse.lake.open import new_landing_bytes, open_lake

    work = new_landing_bytes(settings.lake_root) if settings.lake_root else None
    with err.status("starting Spark") as status:
        lake = open_lake(settings, work=work)

    def progress(message: str) -> None:
        if message.startswith("wrote "):
            err.print(f"  [green]✓[/green] {message.removeprefix('wrote ')}", highlight=False)
        else:
            status.update(message)

    status = err.status("")
    status.start()
    return lake, progress, status


def _stages(settings: Settings):
    from stedi_lakehouse.pipeline import Stages

    lake, progress, status = _open(settings)
    stages = Stages(
        lake,
        rules=settings.rules,
        progress=progress,
        quality=settings.quality,
        maintenance=settings.maintenance,
    )
    return stages, status


def show(renderable) -> None:
    """Print a result; a table too wide for the console is printed as plain lines, so that no
    number is cut (in a log file or CI output the console is 80 columns)."""
    from stedi_lakehouse.cli.render import fitted

    out.print(fitted(renderable, out.width))


def _say_skipped(
    skipped: dict[str, str], said: str = "not read", where: str = "in the landing folders"
) -> None:
    """Files left (a run does not read them, `land` does not copy them), by name, with why:
    never in silence."""
    if skipped:
        out.print(f"{said}: {len(skipped):,} file(s) {where}:", highlight=False, soft_wrap=True)
        for name, why in skipped.items():
            out.print(Text(f"  {name}: {why}"), soft_wrap=True)


def _promote(settings: Settings, stage: Stage, *, as_json: bool = False) -> None:
    from stedi_lakehouse.cli.render import (
        compacted_line,
        records_table,
        run_json,
        unmet_table,
        writes_table,
    )
    from stedi_lakehouse.pipeline import run_stages

    started = time.monotonic()
    stages, status = _stages(settings)
    try:
        report = run_stages(stages, str(stage), pseudonym_key=_key(settings))
    finally:
        status.stop()
        if as_json and stages.record is not None:  # a failed run's record too
            sys.stdout.write(run_json(stages.record) + "\n")
    if as_json:
        return
    _say_skipped(report.skipped)
    if report.changed:
        out.print("changed since processed (a new delivery: its rows replaced):")
        for name in report.changed:
            out.print(Text(f"  {name}"), soft_wrap=True)
    if report.writes:
        show(writes_table(report.writes))
        if report.datasets:
            show(records_table(report.datasets.values()))
        if unmet := [o for o in stages.outcomes if not o.passed]:
            show(unmet_table(unmet))
        if report.compactions:
            out.print(compacted_line(report.compactions), soft_wrap=True, highlight=False)
        if stage is Stage.ALL:
            _maintain_if_due(stages.lake, settings)
    else:
        out.print("nothing new: no landing file arrived since the last run; no table written")
    out.print(
        f"rules: {settings.rules} · lake: {stages.lake.root} · {time.monotonic() - started:.1f} s"
    )


AsJson = Annotated[
    bool,
    typer.Option("--json", help="Print the run's record (the fields of the `runs` table) as JSON."),
]


@app.command()
def run(
    lake_root: LakeRoot = None,
    rules: RulesOption = None,
    profile: Profile = None,
    as_json: AsJson = False,
    remote: Remote = None,
) -> None:
    """Run every stage: landing files -> trusted -> curated."""
    with user_errors():
        _promote(_settings(profile, lake_root, rules, remote), Stage.ALL, as_json=as_json)


@app.command()
def watch(
    lake_root: LakeRoot = None,
    rules: RulesOption = None,
    profile: Profile = None,
    every: Annotated[
        float, typer.Option("--every", min=0.1, help="Seconds between looks at landing/.")
    ] = 30.0,
    runs: Annotated[
        int,
        typer.Option("--runs", min=0, help="Stop after N runs that wrote tables (0: never)."),
    ] = 0,
    settle: Annotated[
        float,
        typer.Option(
            "--settle", min=0, help="Leave a file modified in the last SECONDS for a later look."
        ),
    ] = 10.0,
) -> None:
    """Keep Spark running; run every stage whenever new landing files arrive (Ctrl-C stops).

    Later runs find Spark warm: a new file costs them a fraction of a `run` command.

    The lake stays locked (to other commands) while watching."""
    from stedi_lakehouse.cli.render import run_line
    from stedi_lakehouse.lake.open import STOPPED, with_jit_for
    from stedi_lakehouse.pipeline import watch as watch_lake

    with user_errors():
        settings = with_jit_for(_settings(profile, lake_root, rules), None)  # long-lived: full JIT
        lake, progress, status = _open(settings)
        watching = f"watching {lake.root}/landing every {every:g} s · Ctrl-C stops"
        try:
            watch_lake(
                lake,
                rules=settings.rules,
                pseudonym_key=_key(settings),
                quality=settings.quality,
                maintenance=settings.maintenance,
                every=every,
                runs=runs,
                settle_seconds=settle,
                progress=progress,
                on_run=lambda report, s: out.print(
                    run_line(report.writes, report.datasets.values(), s, report.compactions),
                    soft_wrap=True,
                ),
                on_idle=lambda written: status.update(watching),
                on_failure=lambda error, delay: err.print(
                    Text(f"run failed: {failure_text(error)}; looking again in {delay:g} s"),
                    soft_wrap=True,
                ),
            )
        except KeyboardInterrupt:
            status.stop()
            err.print(STOPPED, highlight=False)
            raise typer.Exit(130) from None
        finally:
            status.stop()


@app.command()
def promote(
    stage: Annotated[Stage, typer.Argument(help="trusted (reads landing too), curated, or all.")],
    lake_root: LakeRoot = None,
    rules: RulesOption = None,
    profile: Profile = None,
) -> None:
    """Run one stage (or all)."""
    with user_errors():
        _promote(_settings(profile, lake_root, rules), stage)


@app.command()
def status(
    lake_root: LakeRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    runs: Annotated[
        int, typer.Option("--runs", help="Show the last N runs, newest first (0: none).", min=0)
    ] = 5,
    profile: Profile = None,
) -> None:
    """Every table with its row count, Delta version and path; then the last runs."""
    from stedi_lakehouse.cli.render import (
        latest_quality,
        quality_table,
        run_summary,
        runs_table,
        status_table,
    )
    from stedi_lakehouse.lake.status import LakeLog

    with user_errors():  # the Delta logs alone: no JVM, no lock
        lake = LakeLog(_settings(profile, lake_root).require_lake_root())
        statuses = lake.statuses()
        last_runs = [run_summary(record) for record in lake.newest_runs(runs)] if runs else []
        quality = latest_quality(lake.latest_checks())
    if as_json:
        tables = {s.table: {"rows": s.rows, "version": s.version, "path": s.path} for s in statuses}
        shown = {"tables": tables, "runs": last_runs, "quality": quality}
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
    else:
        show(status_table(statuses))
        if last_runs:
            show(runs_table(last_runs))
        if quality:
            show(quality_table(quality))


@app.command()
def history(
    table: Annotated[str, typer.Argument(help="A table of the catalogue (`stedi-lake tables`).")],
    lake_root: LakeRoot = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Show at most this many versions.", min=1)
    ] = 20,
    profile: Profile = None,
) -> None:
    """A table's Delta history, newest first: every version, what wrote it, under which rules.
    Any version can be queried: `stedi-lake query --as-of VERSION`."""
    from stedi_lakehouse.cli.render import history_table
    from stedi_lakehouse.contracts.tables import CATALOGUE
    from stedi_lakehouse.errors import LakeError
    from stedi_lakehouse.lake.status import LakeLog

    with user_errors():
        name = table.lower()
        if name not in CATALOGUE:
            raise LakeError(f"no table '{table}' in the catalogue: one of {', '.join(CATALOGUE)}")
        lake = LakeLog(_settings(profile, lake_root).require_lake_root())  # the Delta log only
        commits = lake.history(name, limit)
    show(history_table(name, commits))
    if len(commits) == limit and commits[-1]["version"] > 0:
        out.print(f"(latest {limit} versions shown; use --limit to see more)")


def _mentioned_tables(sql: str) -> list[str]:
    """The catalogue tables `sql` names (whole words, any case)."""
    from stedi_lakehouse.contracts.tables import CATALOGUE

    return [name for name in CATALOGUE if re.search(rf"\b{name}\b", sql, re.IGNORECASE)]


def _time_travel(lake, sql: str, version: int, views: list[str]) -> None:
    """Shadow every catalogue table `sql` names with a temporary view of its `version` (temp
    views win over the current database's tables for unqualified names); each view created is
    appended to `views`, for the caller to drop. A named table without that version, or named
    with its database (which no temp view shadows), is a LakeError: never the current data."""
    from stedi_lakehouse.errors import LakeError

    mentioned = _mentioned_tables(sql)
    for name in mentioned:
        if re.search(rf"\b{lake.database}`?\s*\.\s*`?{name}\b", sql, re.IGNORECASE):
            raise LakeError(
                f"--as-of reads unqualified table names: write {name}, not {lake.database}.{name} "
                f"(or {lake.database}.{name} VERSION AS OF {version}, without --as-of)"
            )
    for name in mentioned:
        lake.read(name, version=version).createOrReplaceTempView(name)
        views.append(name)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="Spark SQL, run in the lake's database.")],
    lake_root: LakeRoot = None,
    limit: Annotated[int, typer.Option(help="Show at most this many rows.", min=1)] = 100,
    as_of: Annotated[
        int | None,
        typer.Option(
            "--as-of",
            metavar="VERSION",
            min=0,
            help="Time travel: read every lake table the SQL names (unqualified) as of this "
            "Delta version; a named table without it is an error. Versions count per table "
            "(`stedi-lake history TABLE`). Plain Spark SQL works too, table by table: "
            "SELECT ... FROM stedi.customer_trusted VERSION AS OF 3.",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="The catalog database to run in (default: the lake's, `stedi`; data "
            "scientists' is `stedi_curated`, the curated tables that name nobody).",
        ),
    ] = None,
    profile: Profile = None,
    remote: Remote = None,
) -> None:
    """Run one read-only Spark SQL statement (SELECT, WITH, TABLE, VALUES, SHOW, DESCRIBE,
    EXPLAIN) against the `stedi` database and print the result as a table."""
    from pyspark.errors import PySparkException

    from stedi_lakehouse.cli.render import result_table
    from stedi_lakehouse.lake.open import open_lake
    from stedi_lakehouse.lake.readonly import RUN_SQL_ON_FILES, check_read_only

    with user_errors():
        settings = _settings(profile, lake_root, remote=remote)
        lake = open_lake(settings, writes=False)
        views: list[str] = []
        try:
            lake.spark.sql(f"CREATE DATABASE IF NOT EXISTS {settings.catalog.database}")
            lake.spark.catalog.setCurrentDatabase(database or settings.catalog.database)
            if as_of is not None:
                _time_travel(lake, sql, as_of, views)
            check_read_only(lake.spark, sql)
            lake.spark.conf.set(RUN_SQL_ON_FILES, "false")  # Spark's own guard as well
            try:
                result = lake.spark.sql(sql)
                columns, rows = result.columns, result.limit(limit + 1).collect()
            finally:
                lake.spark.conf.unset(RUN_SQL_ON_FILES)
        except PySparkException as exc:
            raise fail(str(exc).strip().splitlines()[0]) from None
        finally:  # the session may outlive the command (in-process callers, tests)
            for name in views:
                lake.spark.catalog.dropTempView(name)
    out.print(result_table(columns, rows[:limit]))
    if len(rows) > limit:
        out.print(f"(first {limit} rows shown; use --limit to see more)")


def _require_ml_extra(command: str) -> None:
    """The packages of the `ml` extra, or one error line saying how to install them."""
    try:
        import deltalake  # noqa: F401
        import plotly  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        hint = "pip install 'stedi-lakehouse[ml]'"
        raise fail(f"stedi-lake {command} needs {exc.name}: {hint}") from None


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder to write.")],
    lake_root: LakeRoot = None,
    table: Annotated[
        str, typer.Option("--table", help="A table with a subject_key column.")
    ] = "machine_learning_curated",
    as_of: Annotated[
        int | None,
        typer.Option("--as-of", metavar="VERSION", min=0, help="The table's Delta version."),
    ] = None,
    splits: Annotated[
        str, typer.Option("--splits", help="Fractions per split, summing to 1.")
    ] = "train=0.8,validation=0.1,test=0.1",
    seed: Annotated[int, typer.Option("--seed", help="Which people go where.")] = 0,
    fmt: Annotated[
        Format, typer.Option("--format", case_sensitive=False, help="File format.")
    ] = Format.PARQUET,
    profile: Profile = None,
) -> None:
    """Training sets split by person (nobody in two splits), with a dataset card:
    OUT/<split>/ files, OUT/card.json, OUT/README.md. Reads Delta directly: no Spark."""
    from stedi_lakehouse.cli.render import export_table
    from stedi_lakehouse.ml.export import export as export_sets
    from stedi_lakehouse.ml.splits import parse_splits

    _require_ml_extra("export")
    with user_errors():
        fractions = parse_splits(splits)
        settings = _settings(profile, lake_root)
        card = export_sets(
            settings.require_lake_root(),
            out_dir,
            table=table,
            as_of=as_of,
            fractions=fractions,
            seed=seed,
            fmt=fmt,
        )
    out.print(export_table(card, out_dir))


@app.command()
def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    lake_root: LakeRoot = None,
    profile: Profile = None,
) -> None:
    """The lake's health as one self-contained HTML page (nothing fetched from the network):
    the funnel, quarantine reasons, runs, consent, the training table, the data dictionary.
    Reads Delta directly: no Spark."""
    from stedi_lakehouse.report.page import render
    from stedi_lakehouse.report.summary import summarise

    _require_ml_extra("report")
    with user_errors():
        summary = summarise(_settings(profile, lake_root).require_lake_root())
        out_file.write_text(render(summary), encoding="utf-8")
    out.print(f"wrote {out_file} ({out_file.stat().st_size / 1e6:.1f} MB)")


@app.command()
def forget(
    email: Annotated[str, typer.Option("--email", help="The person's e-mail address.")],
    before_delivery: Annotated[
        bool,
        typer.Option(
            "--before-delivery",
            help="Someone the lake holds nothing of yet: keep every later delivery of them out.",
        ),
    ] = False,
    lake_root: LakeRoot = None,
    profile: Profile = None,
) -> None:
    """Erase a person from every zone and file of the lake (right to erasure): their customer
    records, accelerometer readings and the step-trainer readings of devices only they claimed,
    landing files and quarantine included; old table versions are purged; later deliveries of
    them are kept out. Irreversible."""
    from stedi_lakehouse.cli.render import erasure_table
    from stedi_lakehouse.erasure.forget import forget as erase
    from stedi_lakehouse.erasure.forget import person_to_forget
    from stedi_lakehouse.lake.open import open_lake

    with user_errors():
        settings = _settings(profile, lake_root)
        person_to_forget(email)  # no address: nothing starts, no key is made
        with err.status("starting Spark") as status:
            lake = open_lake(settings)
            report = erase(
                lake,
                email,
                pseudonym_key=_key(settings),
                progress=status.update,
                before_delivery=before_delivery,
            )
    out.print(erasure_table(report))


def _maintain_if_due(lake, settings: Settings) -> None:
    from stedi_lakehouse.lake.maintenance import due, maintain

    if due(lake, settings.maintenance):
        with err.status("maintaining the lake") as status:
            record = maintain(lake, settings.maintenance, progress=status.update)
        out.print(
            f"maintained {len(record.compactions)} table(s) (due every "
            f"{settings.maintenance.every_hours:g} h)"
        )


@app.command()
def maintain(
    lake_root: LakeRoot = None,
    retention_hours: Annotated[
        float | None,
        typer.Option(
            "--retention-hours",
            min=0,
            help="Keep replaced data files this long (default: maintenance.retention_hours, "
            "168). Older files, and the versions needing them, are gone for good.",
        ),
    ] = None,
    profile: Profile = None,
) -> None:
    """Compact every table's small files and delete replaced files past their retention
    (VACUUM): data of people who withdrew consent leaves the storage. `run` does it when due."""
    from stedi_lakehouse.cli.render import result_table
    from stedi_lakehouse.lake.maintenance import maintain as maintain_lake
    from stedi_lakehouse.lake.open import open_lake

    with user_errors():
        settings = _settings(profile, lake_root)
        if retention_hours is not None:
            chosen = settings.maintenance.model_copy(update={"retention_hours": retention_hours})
            settings = settings.model_copy(update={"maintenance": chosen})
        with err.status("starting Spark") as status:
            lake = open_lake(settings)
            record = maintain_lake(lake, settings.maintenance, progress=status.update)
    rows = [(c.table, f"{c.files_removed:,}", c.version) for c in record.compactions]
    out.print(result_table(["table", "small files compacted", "version"], rows))
    out.print(
        f"replaced files older than {settings.maintenance.retention_hours:g} h deleted; "
        "recorded in `runs` (command maintain)"
    )


@app.command()
def land(
    source: Annotated[
        Path, typer.Argument(help="Folder with customer/, accelerometer/, step_trainer/.")
    ],
    lake_root: LakeRoot = None,
    profile: Profile = None,
) -> None:
    """Deliver JSON-lines files into the lake's landing zone (creating the lake if needed)."""
    from stedi_lakehouse.lake.open import land_files

    with user_errors():
        settings = _settings(profile, lake_root)
        root = settings.require_lake_root()
        copied, left = land_files(source, root)
    for dataset, files in copied.items():
        out.print(f"landed {files} file(s) into {root}/landing/{dataset}/")
    _say_skipped(left, "not landed", f"of {source}")


@app.command()
def config(
    lake_root: LakeRoot = None,
    profile: Profile = None,
    spark_submit: Annotated[
        bool, typer.Option("--spark-submit", help="As launched by spark-submit on a cluster.")
    ] = False,
) -> None:
    """The settings of a profile and the Spark settings they produce (no Spark is started)."""
    from stedi_lakehouse.cli.render import result_table
    from stedi_lakehouse.lake.session import session_options

    with user_errors():
        settings = _settings(profile, lake_root)
        options = session_options(settings, settings.require_lake_root(), submitted=spark_submit)
    shown = settings.model_dump(mode="json", exclude={"pseudonym_key"})
    shown["pseudonym_key"] = "(set)" if settings.pseudonym_key else "(not set)"
    out.print_json(data=shown)
    out.print(result_table(["Spark setting", "value"], sorted(options.items())))


@app.command()
def tables(
    markdown: Annotated[bool, typer.Option("--markdown", help="As a Markdown table.")] = False,
) -> None:
    """The table catalogue, generated from the contracts."""
    from stedi_lakehouse.cli.render import catalogue_markdown, result_table
    from stedi_lakehouse.contracts.tables import CATALOGUE

    if markdown:
        sys.stdout.write(catalogue_markdown() + "\n")
        return
    out.print(
        result_table(
            ["table", "zone", "grain"], [(s.name, s.zone, s.grain) for s in CATALOGUE.values()]
        )
    )
