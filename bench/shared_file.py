"""What sharing one SQLite file costs two worker processes: one server of two workers on one
file against two servers of one worker, each on its own file, side by side on one machine.

Usage: python bench/shared_file.py [RUNS]   (e.g. ``... 4``)

The second setup has no page cache discarded after another process's commit and no writer lock
taken in turns: it bounds what one process writing for all workers could gain. Each setup gets
32 connections from two wrk processes (16 each) for 5 s, alternately (the order flips each
round), access log off. Prints each run and the medians: AddCredit/s, the servers' CPU per
request (user and system time of their process groups over the requests answered) and the
worse p99 of the two wrk processes.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import seeded, start  # noqa: E402
from run import cpu_seconds, group_pids, in_turn, stop, wrk  # noqa: E402

SRC = str(ROOT / "src")
Target = tuple[str, str, str]  # URL, identifier, secret


def load(targets: list[Target], groups: list[int], seconds: int) -> tuple[float, float, float]:
    """Two wrk processes at once; (AddCredit/s, server CPU us per request, worst p99 ms)."""
    out: list[dict[str, float]] = []

    def wrk16(url: str, ident: str, secret: str) -> None:
        out.append(wrk(url, 16, seconds, False, ident, secret, threads=1))

    before = sum(cpu_seconds(group_pids(g)) for g in groups)
    threads = [threading.Thread(target=wrk16, args=target) for target in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = sum(cpu_seconds(group_pids(g)) for g in groups) - before
    requests = sum(r["requests"] for r in out)
    return sum(r["rps"] for r in out), 1e6 * cpu / requests, max(r["p99_ms"] for r in out)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-shared-"))
    procs = []
    try:
        shared_db, *shared_cred = seeded(SRC, str(tmp / "shared.db"))
        proc, url = start(SRC, shared_db, workers=2)
        procs.append(proc)
        shared = ([(url, *shared_cred)] * 2, [proc.pid])
        split_targets, split_groups = [], []
        for name in ("a", "b"):
            database, *cred = seeded(SRC, str(tmp / f"{name}.db"))
            proc, url = start(SRC, database, workers=1)
            procs.append(proc)
            split_targets.append((url, *cred))
            split_groups.append(proc.pid)
        setups = {
            "one file, 2 workers": shared,
            "two files, 1 worker each": (split_targets, split_groups),
        }
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in setups}
        for targets, groups in setups.values():
            load(targets, groups, 3)  # warm-up
        for run in range(runs):
            for name, (targets, groups) in in_turn(setups.items(), run):
                results[name].append(load(targets, groups, 5))
                rps, cpu, p99 = results[name][-1]
                print(
                    f"run {run + 1}, {name}: {rps:,.0f}/s, {cpu:.0f} us/request, p99 {p99:.1f} ms"
                )
        for name, rows in results.items():
            rps, cpu, p99 = (statistics.median(r[i] for r in rows) for i in range(3))
            print(
                f"{name}: median {rps:,.0f}/s, {cpu:.0f} us of server CPU per request, "
                f"p99 {p99:.1f} ms"
            )
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
