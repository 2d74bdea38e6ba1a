"""AddCredit/s of this checkout against an earlier release, side by side on one machine.

Usage: python bench/compare.py GIT_REF [RUNS] [--postgres]   (e.g. python bench/compare.py 68bcaa2)

Checks GIT_REF out into a temporary worktree, seeds a database of 10,000 clients for each
version (SQLite; with ``--postgres``, two databases of one throwaway PostgreSQL), starts both
with ``serve --workers 2`` (access log off), then alternates 5-second wrk runs between them at
32 and at 1 connection (which goes first flips every round); prints the medians and the median
of the paired ratios (this checkout / GIT_REF). The worktree is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from run import in_turn, new_database, postgres, stop, wrk  # noqa: E402

from pgserver import free_port  # noqa: E402


def seeded(src: str, database: str) -> tuple[str, str, str]:
    """A database seeded by that version's own code; (URL, identifier, secret)."""
    env = {**os.environ, "PYTHONPATH": f"{src}:{ROOT / 'bench'}"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "seed.py"), database, "10000"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return database, out[0], out[1]


def start(
    src: str,
    database: str,
    *,
    access_log: bool = False,
    workers: int = 2,
    settings: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """``creditbook serve --workers N`` (2 by default) of that version; (process, API URL).

    ``settings``: more ``CREDITBOOK_*`` environment variables for the server.
    """
    port = free_port()
    env = {**os.environ, "PYTHONPATH": src, "CREDITBOOK_ACCESS_LOG": "1" if access_log else "0"}
    env.update(settings or {})
    code = "import sys; from creditbook.cli import main; sys.exit(main())"
    args = ["serve", "--database", database, "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/includes/api.php"
    for _ in range(150):
        try:
            # /healthz: a request to the API without credentials would count towards a ban.
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    time.sleep(1)
    return proc, url


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--postgres"]
    ref, runs = args[0], int(args[1]) if len(args) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-compare-"))
    worktree = tmp / "old"
    subprocess.run(["git", "worktree", "add", "-q", str(worktree), ref], cwd=ROOT, check=True)
    servers = {}
    pg = postgres() if "--postgres" in sys.argv else None
    try:
        server = pg.__enter__() if pg is not None else None
        for name, src in (("then", worktree / "src"), ("now", ROOT / "src")):
            folder = tmp / name
            folder.mkdir()
            database = new_database(
                "postgres" if server else "sqlite", server, folder, f"bench_{name}"
            )
            database, ident, secret = seeded(str(src), database)
            proc, url = start(str(src), database)
            servers[name] = (proc, url, ident, secret)
        rates: dict[tuple[str, int], list[float]] = {}
        p99s: dict[tuple[str, int], list[float]] = {}
        for _, url, ident, secret in servers.values():
            wrk(url, 32, 2, False, ident, secret)  # warm-up
        for run in range(runs):
            for conns in (32, 1):
                for name, (_, url, ident, secret) in in_turn(servers.items(), run):
                    r = wrk(url, conns, 5, False, ident, secret)
                    rates.setdefault((name, conns), []).append(r["rps"])
                    p99s.setdefault((name, conns), []).append(r["p99_ms"])
        for conns in (32, 1):
            then, now = rates[("then", conns)], rates[("now", conns)]
            paired = statistics.median(b / a for a, b in zip(then, now, strict=True))
            print(
                f"{conns:>3} connections: {ref} {statistics.median(then):,.0f}/s, "
                f"now {statistics.median(now):,.0f}/s, paired ratio {paired:.3f}; p99 "
                f"{statistics.median(p99s[('then', conns)]):.1f} vs "
                f"{statistics.median(p99s[('now', conns)]):.1f} ms"
            )
    finally:
        for proc, *_ in servers.values():
            stop(proc)
        if pg is not None:
            pg.__exit__(None, None, None)
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
