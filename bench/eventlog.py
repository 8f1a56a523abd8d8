"""Where a run's time went, from Spark's event log: every stage that used the cores, when it
ran (seconds since the application started), its tasks, executor time, GC, input, output and
shuffle. Gaps between stages are driver-side work (planning, Delta commits, the catalog).

    STEDI_SPARK__CONF='{"spark.eventLog.enabled": "true", "spark.eventLog.dir": "file:///tmp/ev",
                        "spark.eventLog.compress": "false"}' stedi-lake run --lake-root LAKE
    .venv/bin/python bench/eventlog.py /tmp/ev/<application folder or file> [--min-seconds 0.5]

A lake server's log spans many commands: `--last SECONDS` instead counts what its last
SECONDS held (one command's run: give it that run's wall time), SQL executions and Spark jobs,
and the seconds each kind covered (overlaps counted once).
"""

import argparse
import json
from pathlib import Path


def events(path: Path):
    files = sorted(path.glob("events_*")) if path.is_dir() else [path]
    if not files:
        raise SystemExit(f"no event log in {path}")
    for file in files:
        if file.suffix in (".zstd", ".lz4", ".snappy"):
            raise SystemExit(f"{file} is compressed: set spark.eventLog.compress=false")
        with file.open() as lines:
            for line in lines:
                yield json.loads(line)


def metric(info: dict, name: str) -> float:
    for accumulable in info.get("Accumulables", []):
        if accumulable.get("Name") == f"internal.metrics.{name}":
            return float(accumulable["Value"])
    return 0.0


def covered(spans: list[tuple[int, int]]) -> float:
    """Seconds covered by the (start, end) millisecond spans, overlaps once."""
    total, reach = 0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total / 1000


def last_seconds(path: Path, seconds: float) -> None:
    """The SQL executions and jobs that started in the log's last `seconds`."""
    spans: dict[str, dict[object, list[int]]] = {"SQL executions": {}, "Spark jobs": {}}
    kinds = {
        "SparkListenerJobStart": ("Spark jobs", "Job ID", "Submission Time", 0),
        "SparkListenerJobEnd": ("Spark jobs", "Job ID", "Completion Time", 1),
        "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart": (
            "SQL executions",
            "executionId",
            "time",
            0,
        ),
        "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd": (
            "SQL executions",
            "executionId",
            "time",
            1,
        ),
    }
    for event in events(path):
        if kind := kinds.get(event["Event"]):
            name, key, at, end = kind
            spans[name].setdefault(event[key], [0, 0])[end] = event[at]
    last = max(e for found in spans.values() for _, e in found.values())
    since = last - seconds * 1000
    for name, found in spans.items():
        kept = [(s, e or last) for s, e in found.values() if s >= since]
        print(f"{name}: {len(kept)}, covering {covered(kept):.1f} s of the last {seconds:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="executor time to show")
    parser.add_argument("--last", type=float, help="count what the log's last SECONDS held")
    args = parser.parse_args()
    if args.last:
        return last_seconds(args.path, args.last)
    started = ended = None
    job_of: dict[int, int] = {}
    name_of: dict[int, str] = {}  # stage -> its job's description (the table it writes, ...)
    total = 0.0
    print(
        f"{'job':>5} {'stage':>5} {'from':>6} {'to':>6} {'tasks':>5} {'exec s':>7} "
        f"{'gc s':>5} {'in MB':>7} {'out MB':>6} {'shuffle MB':>10}  name"
    )
    for event in events(args.path):
        kind = event["Event"]
        if kind == "SparkListenerApplicationStart":
            started = event["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            ended = event["Timestamp"]
        elif kind == "SparkListenerJobStart":
            job_of.update({stage: event["Job ID"] for stage in event["Stage IDs"]})
            described = (event.get("Properties") or {}).get("spark.job.description")
            if described:
                name_of.update({stage: described for stage in event["Stage IDs"]})
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            seconds = metric(info, "executorRunTime") / 1000
            total += seconds
            if seconds < args.min_seconds:
                continue
            print(
                f"{job_of.get(info['Stage ID'], -1):>5} {info['Stage ID']:>5} "
                f"{(info['Submission Time'] - started) / 1000:>6.1f} "
                f"{(info['Completion Time'] - started) / 1000:>6.1f} "
                f"{info['Number of Tasks']:>5} {seconds:>7.1f} "
                f"{metric(info, 'jvmGCTime') / 1000:>5.1f} "
                f"{metric(info, 'input.bytesRead') / 1e6:>7.0f} "
                f"{metric(info, 'output.bytesWritten') / 1e6:>6.0f} "
                f"{metric(info, 'shuffle.write.bytesWritten') / 1e6:>10.0f}  "
                f"{name_of.get(info['Stage ID'], info['Stage Name'])[:48]}"
            )
    if started and ended:
        print(
            f"application {(ended - started) / 1000:.1f} s, "
            f"{len(job_of) and max(job_of.values()) + 1} jobs, executor time {total:.1f} s"
        )


if __name__ == "__main__":
    main()
