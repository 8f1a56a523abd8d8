"""The one SparkSession factory: composable builder steps.

Launched by `spark-submit` (on EMR, or `make submit-local`), the cluster's own master, jars and
catalog are kept: only the lake's SQL settings are added. Launched from Python (the CLI, tests),
it starts Spark in local mode with the Delta and S3A jars from the local cache, S3A settings
from the standard AWS environment, and an embedded catalog.
"""

import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import cast

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException, RetriesExceeded
from pyspark.sql import SparkSession

from stedi_lakehouse.errors import ConfigError, LakeError, first_line
from stedi_lakehouse.lake.layout import (
    is_local_path,
    local_path,
    make_private_folder,
    s3_region_and_endpoint,
)
from stedi_lakehouse.settings import Settings

Builder = SparkSession.Builder
Step = Callable[[Builder, Settings, str], Builder]

DELTA_SQL = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands Python the gateway through this variable."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


# The embedded metastore's Derby database (`jdbc:derby:;databaseName=<folder>;create=true`).
METASTORE_URL = "spark.hadoop.javax.jdo.option.ConnectionURL"


def metastore_dir(settings: Settings, lake_root: str) -> Path:
    if settings.catalog.metastore_dir is not None:
        return settings.catalog.metastore_dir.resolve()
    if is_local_path(lake_root):
        return local_path(lake_root).resolve() / "_metastore"
    return Path(".metastore").resolve()


# Classes of generated code a JVM of ours keeps compiled (Spark's default, 100, is fewer than
# one run makes): a `watch`, a server or the test suite sends the same queries run after run.
CODE_CACHE_ENTRIES = 4096


def _with_master(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    return (
        builder.master(settings.spark.master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.codegen.cache.maxEntries", str(CODE_CACHE_ENTRIES))
    )


def _with_delta_jars(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    """The jars go on the JVM's class path (in local mode the executors share it), not into
    `spark.jars`: classes loaded from the class path can come from the class-data archive."""
    jars_dir = settings.spark.jars_dir
    if jars_dir is None:
        return builder
    jars = sorted(jars_dir.glob("*.jar")) if jars_dir.is_dir() else []
    if not jars:
        raise ConfigError(f"no Delta jars in {jars_dir}: run `make jars` (or `make setup`)")
    return builder.config("spark.driver.extraClassPath", os.pathsep.join(str(j) for j in jars))


def _with_python(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    """Python workers (small local DataFrames, the subject-key HMAC, erasure matching) run
    this interpreter, whose environment has this package, not whatever `python3` is on the
    PATH. A SparkContext started from Python takes it from PYSPARK_PYTHON, not the setting."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return builder.config("spark.pyspark.python", sys.executable)


# Spark lowers letters under the JVM's default locale (Turkish and Azeri lower "I" to a dotless
# "ı"); `forget` lowers addresses in Python, under none. Identifiers kept in lower case must be
# lowered alike on both sides, so the JVMs we start use a locale without special case rules.
LOCALE_OPTIONS = "-Duser.language=en -Duser.country=US"
CASE_PROBE = "ÉIİ"
COMPOSE_PROBE = "E\u0301"  # composed by an executor, as `contracts.types.composed` does


def check_case_mapping(spark: SparkSession) -> None:
    """Refuse an engine we did not start (spark-submit's cluster, a Spark Connect endpoint)
    whose executors lower letters otherwise than Python, or cannot compose them (no ICU4J):
    the lake's identifiers would not match the ones `forget` looks for."""
    from pyspark.sql import functions as F

    from stedi_lakehouse.contracts.spark import in_composed_form
    from stedi_lakehouse.contracts.types import composed

    probe = F.concat(F.lit(CASE_PROBE), F.col("id").cast("string"))  # lowered by an executor
    to_compose = F.concat(F.lit(COMPOSE_PROBE), F.col("id").cast("string"))
    try:
        row = spark.range(1).select(F.lower(probe), in_composed_form(to_compose)).first()
    except Exception as exc:  # any engine's own error, said in one line
        raise ConfigError(
            f"this Spark cannot compose Unicode text with ICU4J (Spark 4's own): "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    lowered = row[0].removesuffix("0") if row is not None else None
    if lowered != CASE_PROBE.lower():
        raise ConfigError(
            f"this Spark lowers {CASE_PROBE!r} to {lowered!r}, not {CASE_PROBE.lower()!r}: its "
            f"JVMs' locale has other case rules; start the driver and executors with "
            f"{LOCALE_OPTIONS} (spark.driver.extraJavaOptions, spark.executor.extraJavaOptions)"
        )
    if row is not None and row[1] != composed(COMPOSE_PROBE) + "0":
        raise ConfigError(f"this Spark composes {COMPOSE_PROBE!r} to {row[1]!r}, not as Python")


def _with_driver_jvm(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    log4j = resources.files("stedi_lakehouse") / "log4j2.properties"
    options = [f"-Dlog4j.configurationFile=file:{log4j}", settings.spark.java_options]
    archive = settings.spark.class_archive
    if archive is not None and archive.is_file():
        # Classes mapped from the archive `make setup` made instead of loaded and verified
        # one by one. A JVM or class path that does not match it is told in the JVM's log
        # and starts without it.
        options.append(f"-XX:SharedArchiveFile={archive}")
    if settings.spark.jit == "quick":
        # C1-compiled code only: the JVM does not spend one of few cores on the optimising
        # compiler early on; long work runs slower (docs/performance.md).
        options.append("-XX:TieredStopAtLevel=1")
    options.append(LOCALE_OPTIONS)  # last: no other option may undo it
    return builder.config("spark.driver.memory", settings.spark.driver_memory).config(
        "spark.driver.extraJavaOptions", " ".join(o for o in options if o)
    )


def _with_catalog(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    builder = builder.config("spark.sql.catalogImplementation", "hive")
    if settings.catalog.metastore != "embedded":
        return builder  # e.g. the Glue Data Catalog, configured by the cluster
    home = metastore_dir(settings, lake_root)
    url = f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
    return builder.config(METASTORE_URL, url).config(
        "spark.sql.warehouse.dir", str(home / "warehouse")
    )


def _with_lake_sql(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    conf = {
        **DELTA_SQL,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # Delta replays a table's log with 50 tasks by default, and a run reads a dozen small
        # logs: a few tasks each wait less for the 2 cores.
        "spark.databricks.delta.snapshotPartitions": str(settings.spark.snapshot_partitions),
        # VACUUM lists and deletes files with this many tasks (default 10,000, far too many
        # for a small table; maintenance vacuums every table).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            settings.spark.shuffle_partitions
        ),
        # File statistics (min/max/nulls, for data skipping) on each new table's first two
        # columns, the person/device and time keys of the sensor tables, not Delta's default of
        # 32: statistics on every column make each write copy every string (bench/micro.py).
        "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "2",
        # Every new table's retention, chosen rather than inherited (docs/lakehouse-over-time.md):
        # a month of versions to time-travel to and to audit, a week before a replaced data
        # file may be vacuumed (longer than any run or reader), and no deletion vectors, so a
        # delete rewrites the files it touches and their statistics (`forget` relies on it).
        "spark.databricks.delta.properties.defaults.logRetentionDuration": "interval 30 days",
        "spark.databricks.delta.properties.defaults.deletedFileRetentionDuration": (
            "interval 7 days"
        ),
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        # Adaptive execution may join by hashing instead of sorting when every partition after
        # the shuffle is below this size: the pairs of machine_learning_curated (steps with the
        # owner's readings) are such a join (docs/performance.md).
        "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold": "128m",
        **settings.spark.conf,
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder


S3A = "org.apache.hadoop.fs.s3a"


def s3a_options(environ: Mapping[str, str]) -> dict[str, str]:
    """Hadoop S3A settings for s3:// and s3a:// lake roots. Credentials come from the standard
    AWS chain (environment, profiles, container and instance roles); none is ever put in the
    configuration. An S3-compatible endpoint comes from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
    (S3A does not read them itself), with path-style access."""
    options = {
        "fs.s3.impl": f"{S3A}.S3AFileSystem",
        "fs.AbstractFileSystem.s3.impl": f"{S3A}.S3A",
        "fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        ),
        # `land` uploads with copyFromLocalFile; its "optimized" path goes through the async
        # client, which S3-compatible servers answering "100 Continue" twice (moto) break. The
        # plain path streams through S3A's output stream and works everywhere.
        "fs.s3a.optimized.copy.from.local.enabled": "false",
    }
    region, endpoint = s3_region_and_endpoint(environ)
    if region:
        options["fs.s3a.endpoint.region"] = region
    if endpoint:
        options["fs.s3a.endpoint"] = endpoint
        options["fs.s3a.path.style.access"] = "true"
        options["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https:")).lower()
    return {f"spark.hadoop.{key}": value for key, value in options.items()}


def _with_s3(builder: Builder, settings: Settings, lake_root: str) -> Builder:
    for key, value in s3a_options(os.environ).items():
        builder = builder.config(key, value)
    return builder


# Started from Python, we own the JVM; under spark-submit, master, jars and driver JVM are the
# launcher's (the cluster's). The catalog and SQL settings apply to both.
LOCAL_STEPS: tuple[Step, ...] = (
    _with_master,
    _with_delta_jars,
    _with_python,
    _with_driver_jvm,
    _with_s3,
)
SHARED_STEPS: tuple[Step, ...] = (_with_catalog, _with_lake_sql)


@contextmanager
def _output_to(log_file: Path | None) -> Iterator[None]:
    """Send what the JVM we are about to start prints (its banner, its logs, Delta's console
    notes such as VACUUM's) to a file: the JVM inherits file descriptors 1 and 2 at launch and
    keeps them; this process's own output is untouched afterwards."""
    if log_file is None:
        yield
        return
    make_private_folder(log_file.parent)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    descriptor = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "ab") as log:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


# Lines of a failed start that say nothing about why: launcher notes, engine logs, stack frames.
_NOISE = re.compile(
    r"WARNING|Setting default log level|To adjust logging|\[cds\]|^\s*at |bad array subscript"
)


def _not_started(exc: Exception, log: Path | None, logged: int) -> str:
    """One line on why Spark did not start (no Java at JAVA_HOME, a Java that Spark does not
    run on, a Spark setting it refuses): the JVM's or the launcher's own words, which Java,
    and where the JVM's log is."""
    thrown = exc.java_exception if isinstance(exc, Py4JJavaError) else getattr(exc, "_origin", None)
    if thrown is not None:  # the JVM started, and Spark failed in it: its deepest cause
        while thrown.getCause() is not None:
            thrown = thrown.getCause()
        said = [str(thrown.toString())]
    else:  # the JVM exited before it could answer: it said why in its log
        said = [str(exc)]
        if log is not None and log.is_file():
            with log.open("rb") as lines:
                lines.seek(logged)
                new = lines.read().decode(errors="replace").splitlines()
            # "/.../bin/spark-class: line 71: /x/bin/java: No such file" -> "/x/bin/java: No ..."
            new = [re.sub(r"^\S*spark-class: line \d+: ", "", line).strip() for line in new]
            said = [line for line in new if line and not _NOISE.search(line)][:2] or said
    java = os.environ.get("JAVA_HOME")
    where = f"JAVA_HOME={java}" if java else "the java on the PATH (no JAVA_HOME)"
    tail = f" The JVM's log: {log}" if log is not None else ""
    said = [line.rstrip(".") for line in said]
    return f"Spark did not start: {'; '.join(said)}. Java: {where}; Spark runs on 17 or 21.{tail}"


def configure(builder: Builder, settings: Settings, lake_root: str, *, submitted: bool) -> Builder:
    steps = SHARED_STEPS if submitted else LOCAL_STEPS + SHARED_STEPS
    for step in steps:
        builder = step(builder.appName(settings.spark.app_name), settings, lake_root)
    return builder.enableHiveSupport()


def session_options(settings: Settings, lake_root: str, *, submitted: bool) -> dict[str, str]:
    """The Spark settings the factory would apply, without starting Spark."""
    builder = configure(SparkSession.Builder(), settings, lake_root, submitted=submitted)
    return dict(builder._options)


def build_session(settings: Settings, lake_root: str) -> SparkSession:
    submitted = launched_by_spark_submit()
    if not submitted and settings.spark.jars_dir is None:
        # a JVM of ours without Delta would fail at the first table with a bare ClassNotFound
        raise ConfigError(
            "the settings name no Delta jars (spark.jars_dir): use a profile that does (the "
            "project's conf/local.yaml; STEDI_CONF_DIR names the folder of the profiles), or "
            "launch through spark-submit"
        )
    builder = configure(SparkSession.builder, settings, lake_root, submitted=submitted)
    embedded = settings.catalog.metastore == "embedded"
    home = metastore_dir(settings, lake_root)
    if embedded:
        make_private_folder(home)
        mend_half_made_metastore(home)
    log = settings.spark.jvm_log
    logged = log.stat().st_size if log is not None and log.is_file() else 0
    try:
        with _output_to(log):
            spark = builder.getOrCreate()
            spark._jsparkSession.sessionState()  # made at first use: a bad setting fails here
    except (PySparkException, Py4JJavaError) as exc:
        raise ConfigError(_not_started(exc, log, logged)) from None
    spark.sparkContext.setLogLevel("ERROR")
    if submitted:
        check_case_mapping(spark)
    if embedded:
        # Derby boots at the first catalog access: its log goes beside the metastore, not to cwd.
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        jvm.java.lang.System.setProperty("derby.system.home", str(home))
    return spark


def end_jvm() -> None:
    """Kill the JVM `build_session` started in this process and wait for it (alone, it would
    notice its parent is gone and run Spark's shutdown hooks while a commit under way may
    still finish)."""
    from pyspark import SparkContext

    jvm = getattr(SparkContext._gateway, "proc", None)
    if jvm is not None:
        jvm.kill()
        jvm.wait(timeout=30)


def mend_half_made_metastore(home: Path) -> None:
    """Remove a Derby database a killed process left half made (no `service.properties`):
    Derby refuses it for good. It held only table registrations, which runs make again; the
    lake's lock keeps any other process from making it meanwhile."""
    database = home / "metastore_db"
    if database.is_dir() and not (database / "service.properties").exists():
        shutil.rmtree(database)


def _without_token(url: str) -> str:
    return re.sub(r";token=[^;]*", "", url)


def remote_session(url: str, settings: Settings, *, lake_sql: bool) -> SparkSession:
    """A thin Spark Connect client session at `url` (no JVM here). `lake_sql`: give the
    session the lake's SQL settings a session may change, for an endpoint not started by
    `stedi-lake server` (which has them all)."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from stedi_lakehouse.lake.retries import UntilLost, quickly

    try:
        spark = SparkSession.builder.remote(url).getOrCreate()
        client = cast(ConnectSession, spark).client
        client.set_retry_policies(quickly())  # the first call: is anybody there?
        _ = spark.version
        # later calls ride out a blip of about half a minute; an endpoint stopped while the
        # command runs (`server stop`) ends it then, with one line, not ten minutes later
        client.set_retry_policies([UntilLost(max_retries=6, max_backoff=10_000)])
    except (PySparkException, ValueError) as exc:  # ValueError: a URL urllib cannot parse
        said = first_line(exc)
        raise ConfigError(
            f"cannot reach the Spark Connect endpoint {_without_token(url)}: {said}"
        ) from None
    if lake_sql:
        options = _with_lake_sql(SparkSession.Builder(), settings, "")._options
        for key, value in options.items():
            if key not in DELTA_SQL:  # static: the endpoint's own
                spark.conf.set(key, value)
        check_case_mapping(spark)  # an endpoint `stedi-lake server` did not start
    return spark


# A killed client's operations still running at its endpoint are stopped within this long.
STOP_SESSION_SECONDS = 60.0


def stop_session(url: str, session_id: str) -> None:
    """Stop every operation of another client's session at the Spark Connect endpoint `url`
    (a writer killed while they ran), wait until none is left, then release the session."""
    from pyspark.sql.connect.client import SparkConnectClient

    from stedi_lakehouse.lake.retries import quickly

    joined = f"{url.rstrip('/')}{'' if ';' in url else '/'};session_id={session_id}"
    client = SparkConnectClient(connection=joined)
    # an endpoint gone since this writer reached it: what is left to stop is stopped by the
    # next writer
    client.set_retry_policies(quickly())
    try:
        deadline = time.monotonic() + STOP_SESSION_SECONDS
        while client.interrupt_all():  # the ids it interrupted; none: nothing is left
            if time.monotonic() > deadline:
                raise LakeError(
                    f"the operations of a killed writer's session {session_id} at "
                    f"{_without_token(url)} did not stop: restart that endpoint"
                )
            time.sleep(0.5)
        client.release_session()
    except RetriesExceeded:
        raise LakeError(
            f"the Spark Connect endpoint {_without_token(url)} stopped answering while a killed "
            f"writer's session {session_id} was being stopped there: run the command again"
        ) from None
    except PySparkException as exc:
        if "SESSION_CLOSED" not in str(exc):  # released already: nothing of it runs
            raise
    finally:
        client.close()
