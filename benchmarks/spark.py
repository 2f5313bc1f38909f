"""Linkage on the Spark engine (local mode) against the embedded engine, same data, same run.

    .venv/bin/python benchmarks/spark.py [--n 100000,1000000] [--master local[2]]
        [--engines embedded,spark] [--work /tmp/accord-spark-bench] [--driver-memory 4g]
        [--before-src /path/to/an/older/src]

For each N (records per side, simulated migrant-like people, half shared): simulates and encodes
both sides once, as partners would (the secret stays in this script, never in the Spark
settings), and writes them as the partners' Parquet encodings under --work (reused by later
runs). Each engine then links them in a fresh child process (so each one's peak memory is its
own): the embedded engine, and the Spark engine (blocking, comparison levels, EM's pairs and
scores in partitions; one-to-one on the driver). Reports wall and CPU time, the driver's peak
RSS, Spark's executor peak memory (JVM heap and the process tree, which includes the Python
workers) and the shuffle volume of every stage, read from Spark's REST status API
(http://<driver>:4040/api/v1, local to this machine; polled every 20 s into --work, so a run
stopped early still leaves its finished stages), F1 against the true pairs, and whether the two
engines' pairs and scores are identical. Prints the load average: the machine is shared, so
wall times are inflated.

Per phase (blocking; levels and EM; scores and the competing-candidate passes; the one-to-one
assignment) it gives the CPU seconds of the whole process tree, the peak RSS of the driver, the
JVM and the Python workers (sampled every second from /proc) and the shuffle written by the
phase's stages. ``--before-src`` runs the Spark engine a second time with another source tree
first on PYTHONPATH (e.g. ``git archive main src``), so a change is measured before and after
on the same data in the same run, beside the embedded engine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import resource
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.link.encodings import EncodedSet  # noqa: E402
from accord.link.evaluate import pair_scores  # noqa: E402
from accord.link.match import MatchConfig, match_sets  # noqa: E402
from accord.protect.encoding import (  # noqa: E402
    Encoder,
    EncodingInfo,
    LinkageSecret,
    schema_from_fields,
)
from tests.linkage_data import FIELDS, generate  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import tree_cpu  # noqa: E402


def _rest(ui: str, path: str) -> Any:
    with urllib.request.urlopen(f"{ui}/api/v1/{path}", timeout=30) as r:
        return json.load(r)


def prepare(n: int, work: Path) -> Path:
    """Both sides' encodings as Parquet (and the true pairs), made once per N."""
    d = work / f"n{n}"
    if (d / "truth.parquet").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    secret = LinkageSecret(os.urandom(32))
    a_rows, b_rows, truth = generate(n, overlap=0.5, seed=21)
    b_rows = b_rows[:n]
    schema = schema_from_fields(FIELDS)
    for side, rows in (("a", a_rows), ("b", b_rows)):
        enc = Encoder(schema, secret, np.random.default_rng(1 if side == "a" else 2))
        t = pa.Table.from_pylist(rows)
        out = enc.encode(t).append_column("id", t["id"])
        pq.write_table(out, d / f"{side}.parquet")
        (d / f"{side}.info").write_bytes(pickle.dumps(
            EncodingInfo(schema, enc.fingerprint, enc.check_value)))
    kept = {r["id"] for r in b_rows}
    pq.write_table(pa.table({"a": [x for x, y, _ in truth if y in kept],
                             "b": [y for x, y, _ in truth if y in kept]}), d / "truth.parquet")
    print(f"simulated and encoded {n:,} a side in {time.perf_counter() - t0:.0f} s")
    return d


def _load(d: Path, side: str) -> EncodedSet:
    info = pickle.loads((d / f"{side}.info").read_bytes())
    return EncodedSet.from_table(pq.read_table(d / f"{side}.parquet"), info)


def _poll(ui: str, out: Path, stop: threading.Event) -> None:
    while not stop.wait(20):
        try:
            app = _rest(ui, "applications")[0]["id"]
            out.write_text(json.dumps({"stages": _rest(ui, f"applications/{app}/stages"),
                                       "executors": _rest(ui, f"applications/{app}/allexecutors")}))
        except Exception:  # the UI may be busy or gone: keep the last snapshot
            continue


def _pss(pid: int) -> float:
    """Proportional set size GB of a process: its pages, shared ones divided among their users.
    The Python workers are forks of one daemon and share its libraries (numpy, pyarrow, numba),
    so summing their RSS (as Spark's process-tree metric does) counts those pages once a worker;
    a container's memory limit (cgroup) counts them once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 0.0


def _anon_file(pid: int) -> dict[str, float]:
    """The driver's RSS split (GB): anonymous pages (heap, arrays: what an out-of-memory kill
    counts) and file-backed ones (libraries, memory-mapped files: reclaimable when clean)."""
    out = {"driver_anon": 0.0, "driver_file": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = {"RssAnon:": "driver_anon", "RssFile:": "driver_file"}.get(line.split(":")[0] + ":")
            if key:
                out[key] = int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return out


def _dir_bytes(path: Path) -> float:
    """GB on disk under ``path`` (Spark's local dir: shuffles, checkpoints, shipped files)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total / 1e9


def _tree_rss() -> dict[str, float]:
    """RSS GB of this process, its JVM descendants and its other (Python) descendants, and the
    descendants' PSS (shared pages counted once)."""
    parent: dict[int, int] = {}
    rss: dict[int, float] = {}
    java: set[int] = set()
    page = os.sysconf("SC_PAGE_SIZE")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)
        f = fields.split()
        parent[int(proc.name)] = int(f[1])
        rss[int(proc.name)] = int(f[21]) * page / 1e9
        if name == "java":
            java.add(int(proc.name))
    me = os.getpid()
    out = {"driver": rss.get(me, 0.0), "jvm": 0.0, "workers": 0.0, "pss": 0.0,
           **_anon_file(me)}
    for pid in rss:
        p = pid
        while p in parent and p not in (0, 1, me):
            p = parent[p]
        if p == me and pid != me:
            out["jvm" if pid in java else "workers"] += rss[pid]
            out["pss"] += _pss(pid)
    return out


class Phases:
    """Phase boundaries: wall, CPU of the process tree, the last Spark stage begun, and the peak
    RSS within each phase (a sampling thread)."""

    def __init__(self) -> None:
        self.t0, self.ui = time.perf_counter(), None
        self.marks: list[dict[str, Any]] = []
        self.peak = {"driver": 0.0, "jvm": 0.0, "workers": 0.0, "tree": 0.0, "pss": 0.0,
                     "driver_anon": 0.0, "driver_file": 0.0, "local": 0.0}
        self.local: Path | None = None  # Spark's local dir, whose bytes are sampled
        self.stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()
        self.mark("start")

    def _sample(self) -> None:
        while not self.stop.wait(1.0):
            r = _tree_rss()
            r["tree"] = r["jvm"] + r["workers"]
            if self.local is not None:
                r["local"] = _dir_bytes(self.local)
            for k, v in r.items():
                self.peak[k] = max(self.peak[k], v)

    def _last_stage(self) -> int:
        if self.ui is None:
            return -1
        try:
            app = _rest(self.ui, "applications")[0]["id"]
            return max((s["stageId"] for s in _rest(self.ui, f"applications/{app}/stages")),
                       default=-1)
        except Exception:
            return -1

    def mark(self, name: str) -> None:
        self.marks.append({"phase": name, "wall": time.perf_counter() - self.t0,
                           "cpu": time.process_time() + tree_cpu(),
                           "stage": self._last_stage(), "peak": dict(self.peak)})
        self.peak = dict.fromkeys(self.peak, 0.0)


def child(engine: str, d: Path, master: str, partitions: int | None, driver_memory: str) -> None:
    """One engine's linkage of the prepared data; results and metrics into d."""
    import accord.link.match as match_mod

    phases = Phases()
    a, b = _load(d, "a"), _load(d, "b")
    steps: dict[str, float] = {}
    t = time.perf_counter()
    c0 = time.process_time()
    phases.mark("load")
    names = {"scoring": "blocking", "one-to-one": "scoring"}

    def note(msg: str) -> None:
        steps.setdefault(msg.split(" ")[0], round(time.perf_counter() - t, 1))
        if msg.split(" ")[0] in names:
            phases.mark(names[msg.split(" ")[0]])
        print(f"  [{engine}] {time.perf_counter() - t:7.1f} s  {msg}", flush=True)

    # The end of EM splits scoring into "levels and EM" and "scores and passes" (the levels
    # are computed lazily, by EM's first pattern count).
    fit_model = match_mod.fit_model

    def timed_fit(*args: Any, **kwargs: Any) -> Any:
        model = fit_model(*args, **kwargs)
        phases.mark("levels+EM")
        return model

    match_mod.fit_model = timed_fit  # type: ignore[assignment]
    names["one-to-one"] = "scores+passes"
    metrics: dict[str, Any] = {}
    if engine == "embedded":
        res = match_sets(a, b, MatchConfig(exhaustive_below=0), note)
    else:
        import accord
        from accord.link.spark import SparkEngine, SparkSettings, start_session

        print(f"  [{engine}] accord from {Path(accord.__file__).parent}", flush=True)

        session = start_session(SparkSettings(master, (
            ("spark.executor.processTreeMetrics.enabled", "true"),
            ("spark.driver.memory", driver_memory),
            ("spark.local.dir", str(d / f"spark-local-{engine}")))))
        stop = threading.Event()
        live = d / "spark-metrics.json"
        poller = threading.Thread(target=_poll, args=(session.sparkContext.uiWebUrl, live, stop),
                                  daemon=True)
        poller.start()
        phases.ui = session.sparkContext.uiWebUrl
        phases.local = d / f"spark-local-{engine}"  # one an engine: runs may overlap
        phases.mark("session")
        try:
            # The executors read the partners' Parquet themselves for the scoring join.
            engine_ = SparkEngine(session, partitions,
                                  sources=(str(d / "a.parquet"), str(d / "b.parquet")))
            res = match_sets(a, b, MatchConfig(exhaustive_below=0, engine=engine_), note)
            phases.mark("assignment")
            ui = session.sparkContext.uiWebUrl
            app = _rest(ui, "applications")[0]["id"]
            metrics = {"stages": _rest(ui, f"applications/{app}/stages"),
                       "executors": _rest(ui, f"applications/{app}/allexecutors"),
                       "cpu_tree": tree_cpu()}
        finally:
            stop.set()
            session.stop()
    if engine == "embedded":
        phases.mark("assignment")
    phases.stop.set()
    wall = time.perf_counter() - t
    np.savez(d / f"{engine}.npz", ia=res.ia, ib=res.ib, score=res.score, weight=res.weight)
    truth = pq.read_table(d / "truth.parquet")
    f1 = pair_scores([(a.ids[i], b.ids[j]) for i, j in zip(res.ia, res.ib, strict=True)],
                     set(zip(truth.column("a").to_pylist(), truth.column("b").to_pylist(),
                             strict=True)))
    (d / f"{engine}.json").write_text(json.dumps({
        "wall": wall, "cpu_driver": time.process_time() - c0, "steps": steps,
        "candidates": res.candidates, "linked": len(res.ia),
        "above_threshold": res.diagnostics.get("above_threshold"),
        "blocking": res.diagnostics.get("blocking"), "f1": f1.as_dict(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "phases": phases.marks, **metrics}, default=str))


def run(n: int, engines: list[str], work: Path, master: str, partitions: int | None,
        driver_memory: str, report_only: bool = False, before_src: str | None = None,
        reuse: tuple[str, ...] = ()) -> None:
    d = prepare(n, work)
    print(f"## {n:,} x {n:,}\n\nload average {os.getloadavg()[0]:.1f} at the start "
          f"(nproc {os.cpu_count()})\n")
    if before_src and "spark" in engines and BEFORE not in engines:
        engines = [*engines, BEFORE]
    for engine in engines:
        if not report_only and engine not in reuse:
            env = dict(os.environ)
            if engine == BEFORE:  # the older source first on the path (driver and workers)
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(before_src), *filter(None, [env.get("PYTHONPATH")])])
            subprocess.run([sys.executable, __file__, "--child", engine, "--data", str(d),
                            "--master", master, "--driver-memory", driver_memory,
                            *(["--partitions", str(partitions)] if partitions else [])],
                           check=True, env=env)
    got = {e: json.loads((d / f"{e}.json").read_text()) for e in engines}
    # CPU: the driver process's own, plus its descendants' (the JVM and the Python workers,
    # read from /proc before the session stops); Spark's task CPU (JVM threads) beside it.
    cpu = {e: r["cpu_driver"] + r.get("cpu_tree", 0.0) for e, r in got.items()}
    print("| engine | wall s | CPU s (driver, JVM, Python workers) | driver peak RSS GB | candidates | "
          "above threshold | linked | precision | recall | F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for e, r in got.items():
        f = r["f1"]
        print(f"| {e} | {r['wall']:.1f} | {cpu[e]:.0f} | {r['peak_rss_gb']:.2f} | "
              f"{r['candidates']:,} | {r['above_threshold']:,} | {r['linked']:,} | "
              f"{f['precision']:.4f} | {f['recall']:.4f} | {f['f1']:.4f} |")
    if len(got) >= 2:
        first, *rest = engines
        one = np.load(d / f"{first}.npz")
        for e in rest:
            two = np.load(d / f"{e}.npz")
            same = all(np.array_equal(one[k], two[k]) for k in ("ia", "ib", "score", "weight"))
            print(f"\nidentical pairs, scores and weights ({first} and {e}): **{same}**")
    for e, r in got.items():
        print(f"\n{e} steps (s from start): {r['steps']}; blocking: {r['blocking']}")
        _phase_table(r)
        for ex in r.get("executors", []):
            pm = ex.get("peakMemoryMetrics") or {}
            print(f"\nexecutor {ex['id']}: peak JVM heap {pm.get('JVMHeapMemory', 0) / 1e9:.2f} GB, "
                  f"process tree RSS (JVM + Python workers) "
                  f"{(pm.get('ProcessTreeJVMRSSMemory', 0) + pm.get('ProcessTreePythonRSSMemory', 0)) / 1e9:.2f} GB")
        if r.get("stages"):
            print("\n| stage | tasks | shuffle write MB | shuffle read MB | executor run s |")
            print("| --- | --- | --- | --- | --- |")
            for s in sorted(r["stages"], key=lambda s: s["stageId"]):
                print(f"| {s['stageId']} {s['name'][:36]} | {s['numTasks']} | "
                      f"{s['shuffleWriteBytes'] / 1e6:.1f} | {s['shuffleReadBytes'] / 1e6:.1f} | "
                      f"{(s.get('executorRunTime') or 0) / 1000:.1f} |")
            total = sum(s["shuffleWriteBytes"] for s in r["stages"]) / 1e6
            print(f"\nshuffle written in all: {total:,.1f} MB")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}\n", flush=True)


BEFORE = "spark-before"


def _phase_table(r: dict[str, Any]) -> None:
    """Per phase: wall, CPU of the process tree, peak RSS, Spark stages and shuffle written."""
    marks = r.get("phases") or []
    stages = {s["stageId"]: s for s in r.get("stages", [])}
    print("\n| phase | wall s | CPU s (tree) | peak RSS GB driver / JVM / Python workers | "
          "driver anon / file GB | peak PSS GB JVM + workers | local dir GB | stages | "
          "shuffle write MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for before, m in itertools.pairwise(marks):
        ids = range(before["stage"] + 1, m["stage"] + 1)
        shuffle = sum(stages[i]["shuffleWriteBytes"] for i in ids if i in stages) / 1e6
        pk = m["peak"]
        span = f"{ids.start}-{ids.stop - 1}" if len(ids) else ""
        print(f"| {m['phase']} | {m['wall'] - before['wall']:.1f} | {m['cpu'] - before['cpu']:.1f} | "
              f"{pk['driver']:.2f} / {pk['jvm']:.2f} / {pk['workers']:.2f} | "
              f"{pk.get('driver_anon', 0.0):.2f} / {pk.get('driver_file', 0.0):.2f} | "
              f"{pk.get('pss', 0.0):.2f} | {pk.get('local', 0.0):.2f} | {span} | "
              f"{shuffle:,.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100000")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--engines", default="embedded,spark")
    ap.add_argument("--work", default="/tmp/accord-spark-bench")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--child", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--before-src", default=None,
                    help="also run the Spark engine with this source tree first on PYTHONPATH")
    ap.add_argument("--reuse", default="",
                    help="engines whose results under --work are reported, not run again")
    ap.add_argument("--report-only", action="store_true",
                    help="print the tables from the last run's files under --work")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.data), args.master, args.partitions, args.driver_memory)
        return
    for n in (int(x) for x in args.n.split(",")):
        run(n, args.engines.split(","), Path(args.work), args.master, args.partitions,
            args.driver_memory, args.report_only, args.before_src,
            tuple(filter(None, args.reuse.split(","))))


if __name__ == "__main__":
    main()
