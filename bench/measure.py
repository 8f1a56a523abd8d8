"""Measuring a command as `make bench` does (bench/run.py): its wall seconds and the peak memory
of its whole process tree (each process's RSS, those sharing an address space counted once,
sampled every 0.2 s), with the trees of daemons it works through (a lake server, which no
command's tree holds once started) counted beside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY_S = 0.2
LATENCY_RUNS = 5  # runs of each quick command; the median is reported
GIB = 1024**3
_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())  # kcmp(2) syscall number
_KCMP_VM = 1


def tree_rss(process: psutil.Process) -> tuple[int, list[dict]]:
    """Sum of RSS of a process and all its descendants (processes may vanish meanwhile), and
    what each member held: anonymous memory (heaps, native allocations) and file-backed pages
    (mapped jars, libraries, spilled blocks), from /proc/<pid>/status where there is one.
    A member that shares the address space of one already counted is listed, not added: the
    JVM starts each subprocess (Hadoop's shell commands) through vfork, and until the child
    runs its program it reports the whole JVM's RSS as its own."""
    total, parts, counted = 0, [], []
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0, []
    for member in members:
        with contextlib.suppress(psutil.Error, OSError):
            # compared before its memory is read: a child that runs its program in between
            # would otherwise show the JVM's RSS and then no longer share it
            twin = next((pid for pid in counted if _same_address_space(pid, member.pid)), None)
            rss = member.memory_info().rss
            part = {"name": member.name(), "rss_gib": round(rss / GIB, 3), **_rss_kinds(member)}
            if twin is None:
                total += rss
                counted.append(member.pid)
            else:
                part["shares_memory_of"] = twin
            parts.append(part)
    return total, parts


def _same_address_space(pid: int, other: int) -> bool:
    """Whether two processes share one address space (Linux kcmp KCMP_VM; False elsewhere)."""
    if _SYS_KCMP is None:
        return False
    return _LIBC.syscall(_SYS_KCMP, pid, other, _KCMP_VM, 0, 0) == 0


def _rss_kinds(member: psutil.Process) -> dict[str, float]:
    kinds = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{member.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                kinds[f"{key[3:].lower()}_gib"] = round(int(value.split()[0]) * 1024 / GIB, 3)
    return kinds


def measure(
    command: list[str],
    *,
    env: dict[str, str],
    log: Path,
    during: Callable[[subprocess.Popen, Path], dict] | None = None,
    daemons: Sequence[int] = (),
) -> dict:
    """Run a command; wall seconds, peak process-tree RSS, exit code. Output goes to `log`.
    `during(process, log)`, if given, acts while the command runs; its result is added.
    `daemons`: pids of processes outside the command's tree whose trees count in its memory."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak, samples, at_peak, peak_at = 0, 0, [], 0.0
    done = threading.Event()
    beside = []
    for pid in daemons:
        with contextlib.suppress(psutil.Error):
            beside.append(psutil.Process(pid))
    with log.open("wb") as handle:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        process = psutil.Process(child.pid)

        def sample() -> None:
            nonlocal peak, samples, at_peak, peak_at
            while not done.is_set():
                total, parts = tree_rss(process)
                for daemon in beside:
                    rss, members = tree_rss(daemon)
                    total += rss
                    parts += [{**member, "daemon": daemon.pid} for member in members]
                if total > peak:
                    peak, at_peak, peak_at = total, parts, time.perf_counter() - started
                samples += 1
                done.wait(SAMPLE_EVERY_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        extra = during(child, log) if during else {}
        code = child.wait()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    return {
        "command": command,
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_bytes": peak,
        "peak_rss_gib": round(peak / GIB, 3),
        "memory_samples": samples,
        "peak_at_s": round(peak_at, 1),
        "peak_processes": at_peak,  # what the peak was made of
        **({"daemons_counted": [d.pid for d in beside]} if daemons else {}),
        "log": str(log.relative_to(ROOT)),
        **extra,
    }


def latency(
    command: list[str], *, env: dict[str, str], log: Path, daemons: Sequence[int] = ()
) -> dict:
    """A quick command run `LATENCY_RUNS` times, one after another: the median wall seconds
    (and the range), the largest peak memory (`daemons` counted, as in `measure`), the first
    non-zero exit code."""
    runs = [measure(command, env=env, log=log, daemons=daemons) for _ in range(LATENCY_RUNS)]
    walls = [r["wall_s"] for r in runs]
    return {
        "command": command,
        "runs": len(runs),
        "wall_s": round(statistics.median(walls), 3),
        "min_s": min(walls),
        "max_s": max(walls),
        "peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
        "exit_code": next((r["exit_code"] for r in runs if r["exit_code"]), 0),
        "log": runs[-1]["log"],
    }
