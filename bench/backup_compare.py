"""AddCredit's p99 while `creditbook backup` runs: this checkout's server against an earlier
release's, side by side on one machine.

Usage: python bench/backup_compare.py GIT_REF [PAIRS]   (e.g. ``... 09d764c 4``)

Builds one SQLite database of 10,000 clients and 1,000,000 chained entries, checks GIT_REF out
into a temporary worktree, then alternates the two versions (the order flips each pair): each
run serves a fresh copy of the database with ``serve --workers 2`` (its defaults, access log
on), drives it at 32 connections for 12 s and starts this checkout's ``creditbook backup`` 3 s
in. Prints each run, the medians and the paired ratios of the p99 (this checkout / GIT_REF).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import start  # noqa: E402
from run import PY, bulk_entries, in_turn, settle, stop, wrk  # noqa: E402
from seed import seed  # noqa: E402

import creditbook  # noqa: E402


def run(src: str, template: Path, work: Path, ident: str, secret: str) -> tuple[float, ...]:
    """One run of one version: (p99 ms, max ms, AddCredit/s, backup seconds)."""
    for old in work.glob("run.db*"):
        old.unlink()
    shutil.copy(template, work / "run.db")
    database = f"sqlite:///{work / 'run.db'}"
    proc, url = start(src, database, access_log=True)
    try:
        wrk(url, 32, 2, False, ident, secret)  # warm-up
        took: list[float] = []

        def backup() -> None:
            time.sleep(3)
            dest = Path(tempfile.mkdtemp(prefix="creditbook-backup-")) / "b.db"
            started = time.perf_counter()
            subprocess.run(
                [PY, "-m", "creditbook", "backup", str(dest), "--database", database],
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                capture_output=True,
                check=True,
            )
            took.append(time.perf_counter() - started)
            shutil.rmtree(dest.parent, ignore_errors=True)

        taker = threading.Thread(target=backup)
        taker.start()
        result = wrk(url, 32, 12, False, ident, secret)
        taker.join()
    finally:
        stop(proc)
    return result["p99_ms"], result["max_ms"], result["rps"], took[0] if took else float("nan")


def main() -> None:
    ref, pairs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-backup-compare-"))
    worktree = tmp / "old"
    subprocess.run(["git", "worktree", "add", "-q", str(worktree), ref], cwd=ROOT, check=True)
    try:
        template = tmp / "template.db"
        url = f"sqlite:///{template}"
        ident, secret = seed(url, 10_000)
        bulk_entries(url, 10_000, 100)
        with creditbook.open(url) as book:
            book.store.backfill_chain()
        settle(url)
        versions = {"then": str(worktree / "src"), "now": str(ROOT / "src")}
        runs: dict[str, list[tuple[float, ...]]] = {name: [] for name in versions}
        for i in range(pairs):
            for name, src in in_turn(versions.items(), i):
                runs[name].append(run(src, template, tmp, ident, secret))
                p99, top, rps, took = runs[name][-1]
                print(
                    f"{name}: p99 {p99:.1f} ms, max {top:.1f} ms, {rps:,.0f}/s, backup {took:.1f} s"
                )
        for name, results in runs.items():
            print(
                f"{ref if name == 'then' else 'now'}: median p99 "
                f"{statistics.median(r[0] for r in results):.1f} ms, max "
                f"{statistics.median(r[1] for r in results):.1f} ms, "
                f"{statistics.median(r[2] for r in results):,.0f}/s"
            )
        ratios = [b[0] / a[0] for a, b in zip(runs["then"], runs["now"], strict=True)]
        print("paired p99 ratios (now / then):", ", ".join(f"{r:.2f}" for r in ratios))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
