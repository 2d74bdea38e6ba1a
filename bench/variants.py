"""AddCredit/s of this checkout under different settings, side by side on one machine.

Usage: python bench/variants.py VARIANT VARIANT [...] [--runs N]
  e.g. python bench/variants.py - CREDITBOOK_SQLITE_SYNCHRONOUS=NORMAL
       python bench/variants.py - -   (the same settings twice: the noise of the machine)
       python bench/variants.py workers=1 workers=2
       python bench/variants.py CREDITBOOK_ACCESS_LOG=1 app=prototype app=baseline

A variant is ``-`` (the defaults) or comma-separated settings: ``workers=N`` or ``CREDITBOOK_*``
environment variables; or ``app=baseline`` / ``app=prototype`` (``bench/baseline.py``, the naive
baseline, or ``bench/prototype.py``, the performance issue's prototype, under uvicorn with
``workers=N`` if given). Each variant serves its own copy of one seeded SQLite database of
10,000 clients with ``serve`` (access log off, as in ``compare.py``); the variants take turns
for 5-second wrk runs at 32 and at 1 connection (3 rounds by default). Prints each run with the
server's CPU per request (its process group's CPU time over the requests) and the machine's CPU
over it (busy, of which system; idle, I/O wait and steal, from /proc/stat: wrk
and the kernel count too), then the medians and the paired ratios against the first variant.
The order of the variants is reversed every other round.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import seeded, start  # noqa: E402
from run import Server, cpu_seconds, group_pids, in_turn, stop, wrk  # noqa: E402

SRC = str(ROOT / "src")
CONNECTIONS = (32, 1)


APPS = ("creditbook", "baseline", "prototype")


def parse(variant: str) -> tuple[int, dict[str, str], str]:
    """A variant's worker count, environment and app."""
    workers, env, app = 2, {}, "creditbook"
    for item in filter(None, variant.split(",")) if variant != "-" else ():
        name, _, value = item.partition("=")
        if name == "workers" and value.isdigit() and int(value) > 0:
            workers = int(value)
        elif name == "app" and value in APPS:
            app = value
        elif name.startswith("CREDITBOOK_"):
            env[name] = value
        else:
            raise SystemExit(
                f"not a setting: {item!r} (workers=N, app=baseline|prototype or CREDITBOOK_*=VALUE)"
            )
    if env and app != "creditbook":
        raise SystemExit(f"CREDITBOOK_* settings are for Creditbook, not app={app}")
    return workers, env, app


def machine_cpu() -> list[int]:
    """The machine's CPU time so far (ticks): user, nice, system, idle, iowait, irq, softirq,
    steal (time the hypervisor gave another guest)."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def shares(before: list[int], after: list[int]) -> dict[str, float]:
    """Percentages of the machine's time between two readings."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    user, nice, system, idle, iowait, irq, soft, steal = spent
    total = sum(spent) or 1
    return {
        "busy": 100 * (user + nice + system + irq + soft) / total,
        "system": 100 * (system + irq + soft) / total,
        "idle": 100 * idle / total,
        "iowait": 100 * iowait / total,
        "steal": 100 * steal / total,
    }


def main() -> None:
    args = sys.argv[1:]
    runs = 3
    if "--runs" in args:
        at = args.index("--runs")
        runs = int(args[at + 1])
        del args[at : at + 2]
    if len(args) < 2:
        raise SystemExit(__doc__)
    # A variant given twice (an A/A run, to see the machine's noise) is told apart by its place.
    labels = [v if args.count(v) == 1 else f"{v} (#{n + 1})" for n, v in enumerate(args)]
    setups = {label: parse(variant) for label, variant in zip(labels, args, strict=True)}
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-variants-"))
    servers: dict[str, tuple[Callable[[], None], str, int]] = {}
    try:
        source, ident, secret = seeded(SRC, str(tmp / "seed.db"))
        for n, (variant, (workers, env, app)) in enumerate(setups.items()):
            database = str(tmp / f"v{n}.db")
            shutil.copy(source, database)
            if app == "creditbook":
                proc, url = start(SRC, database, workers=workers, settings=env)
                servers[variant] = (partial(stop, proc), url, proc.pid)
            else:
                server = Server(app, database, ident, secret, workers)
                servers[variant] = (server.stop, server.url, server.proc.pid)
        for _, url, _ in servers.values():
            wrk(url, 32, 2, False, ident, secret)  # warm-up
        rates: dict[tuple[str, int], list[float]] = {}
        p99s: dict[tuple[str, int], list[float]] = {}
        cpus: dict[tuple[str, int], list[float]] = {}
        for run in range(runs):
            for conns in CONNECTIONS:
                for variant, (_, url, group) in in_turn(servers.items(), run):
                    before, spent = machine_cpu(), cpu_seconds(group_pids(group))
                    r = wrk(url, conns, 5, False, ident, secret)
                    cpu = shares(before, machine_cpu())
                    spent = cpu_seconds(group_pids(group)) - spent
                    rates.setdefault((variant, conns), []).append(r["rps"])
                    p99s.setdefault((variant, conns), []).append(r["p99_ms"])
                    cpus.setdefault((variant, conns), []).append(1e6 * spent / r["requests"])
                    print(
                        f"run {run + 1}, {variant}, {conns} conns: {r['rps']:,.0f}/s, p99 "
                        f"{r['p99_ms']:.1f} ms, server CPU {1e6 * spent / r['requests']:.0f} us "
                        f"per request; machine busy {cpu['busy']:.0f}% (system "
                        f"{cpu['system']:.0f}%), idle {cpu['idle']:.0f}%, "
                        f"iowait {cpu['iowait']:.0f}%, steal {cpu['steal']:.0f}%",
                        flush=True,
                    )
        first = labels[0]
        for conns in CONNECTIONS:
            for variant in labels:
                mine = rates[(variant, conns)]
                paired = statistics.median(
                    b / a for a, b in zip(rates[(first, conns)], mine, strict=True)
                )
                print(
                    f"{conns:>3} conns, {variant}: {statistics.median(mine):,.0f}/s, p99 "
                    f"{statistics.median(p99s[(variant, conns)]):.1f} ms, server CPU "
                    f"{statistics.median(cpus[(variant, conns)]):.0f} us, paired ratio to "
                    f"{first} {paired:.3f}"
                )
    finally:
        for halt, _, _ in servers.values():
            halt()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
