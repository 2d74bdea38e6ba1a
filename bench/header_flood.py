"""/healthz latency while four connections stream endless headers, and server memory after:
this checkout against an earlier release, side by side.

Usage: python bench/header_flood.py GIT_REF [SECONDS]   (e.g. python bench/header_flood.py 351b523)

Each version serves one worker on a fresh SQLite database. Four connections send a request
line and then one header that never ends, 4 KiB at a time as fast as they can, reconnecting when the
server closes them; meanwhile another client asks /healthz every 20 ms. Prints the /healthz
median and p99, and the server's resident memory at the end, for each version (the hardening
issue's goal: /healthz under 50 ms with four such connections open).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import start  # noqa: E402
from run import group_pids, rss_mb, stop  # noqa: E402


def flood(port: int, seconds: float) -> dict[str, float]:
    """Stream endless headers from four connections while timing /healthz; the figures."""
    done = threading.Event()

    def stream() -> None:
        while not done.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), 5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
                    chunk = b"y" * 4096
                    while not done.is_set():
                        sock.sendall(chunk)
            except OSError:
                time.sleep(0.01)  # closed by the server: start again

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    times = []
    end = time.monotonic() + seconds
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                http.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.HTTPError:
                pass
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    done.set()
    for t in threads:
        t.join(timeout=5)
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "requests": float(len(times)),
    }


def main() -> None:
    ref = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-flood-"))
    worktree = tmp / "old"
    subprocess.run(["git", "worktree", "add", "-q", str(worktree), ref], cwd=ROOT, check=True)
    try:
        for name, src in ((ref, worktree / "src"), ("now", ROOT / "src")):
            folder = tmp / name
            folder.mkdir()
            proc, url = start(str(src), f"sqlite:///{folder}/flood.db", workers=1)
            port = int(url.split(":")[2].split("/")[0])
            try:
                figures = flood(port, seconds)
                memory = rss_mb(group_pids(proc.pid))
            finally:
                stop(proc)
            print(
                f"{name:>8}: /healthz p50 {figures['p50_ms']:.1f} ms, p99 "
                f"{figures['p99_ms']:.1f} ms over {figures['requests']:.0f} requests; "
                f"server memory {memory:.0f} MB"
            )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
