"""Run a command as a child process; report wall time and the child's own peak memory."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float
    returncode: int


def run_measured(cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Measured:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, proc.returncode)  # ru_maxrss is in KiB on Linux


def tree_cpu() -> float:
    """CPU seconds of this process's live descendants (a JVM, its Python workers), from /proc
    (Linux): Spark's own metrics count only the JVM's task threads, and a JVM that is still
    running is not in this process's rusage."""
    from pathlib import Path

    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(proc.name)] = int(fields[1])
        cpu[int(proc.name)] = (int(fields[11]) + int(fields[12]) + int(fields[13])
                               + int(fields[14])) / tick  # utime stime cutime cstime
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p in parent and p not in (0, 1, me):
            p = parent[p]
        if p == me and pid != me:
            total += cpu[pid]
    return total
