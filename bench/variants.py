"""AddCredit/s of this checkout under different settings, side by side on one machine.

Usage: python bench/variants.py VARIANT VARIANT [...] [--runs N]
  e.g. python bench/variants.py - CREDITBOOK_SQLITE_SYNCHRONOUS=NORMAL
       python bench/variants.py - -   (the same settings twice: the noise of the machine)
       python bench/variants.py workers=1 workers=2

A variant is ``-`` (the defaults) or comma-separated settings: ``workers=N`` or ``CREDITBOOK_*``
environment variables. Each variant serves its own copy of one seeded SQLite database of
10,000 clients with ``serve`` (access log off, as in ``compare.py``); the variants take turns
for 5-second wrk runs at 32 and at 1 connection (3 rounds by default). Prints each run with the
machine's CPU over it (busy, of which system; idle, I/O wait and steal, from /proc/stat: wrk
and the kernel count too), then the medians and the paired ratios against the first variant.
The order of the variants is reversed every other round.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import seeded, start  # noqa: E402
from run import in_turn, wrk  # noqa: E402

SRC = str(ROOT / "src")
CONNECTIONS = (32, 1)


def parse(variant: str) -> tuple[int, dict[str, str]]:
    """A variant's worker count and environment."""
    workers, env = 2, {}
    for item in filter(None, variant.split(",")) if variant != "-" else ():
        name, _, value = item.partition("=")
        if name == "workers" and value.isdigit() and int(value) > 0:
            workers = int(value)
        elif name.startswith("CREDITBOOK_"):
            env[name] = value
        else:
            raise SystemExit(f"not a setting: {item!r} (workers=N or CREDITBOOK_*=VALUE)")
    return workers, env


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
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        source, ident, secret = seeded(SRC, str(tmp / "seed.db"))
        for n, (variant, (workers, env)) in enumerate(setups.items()):
            database = str(tmp / f"v{n}.db")
            shutil.copy(source, database)
            servers[variant] = start(SRC, database, workers=workers, settings=env)
        for _, url in servers.values():
            wrk(url, 32, 2, False, ident, secret)  # warm-up
        rates: dict[tuple[str, int], list[float]] = {}
        p99s: dict[tuple[str, int], list[float]] = {}
        for run in range(runs):
            for conns in CONNECTIONS:
                for variant, (_, url) in in_turn(servers.items(), run):
                    before = machine_cpu()
                    r = wrk(url, conns, 5, False, ident, secret)
                    cpu = shares(before, machine_cpu())
                    rates.setdefault((variant, conns), []).append(r["rps"])
                    p99s.setdefault((variant, conns), []).append(r["p99_ms"])
                    print(
                        f"run {run + 1}, {variant}, {conns} conns: {r['rps']:,.0f}/s, p99 "
                        f"{r['p99_ms']:.1f} ms; machine busy {cpu['busy']:.0f}% (system "
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
                    f"{statistics.median(p99s[(variant, conns)]):.1f} ms, paired ratio to "
                    f"{first} {paired:.3f}"
                )
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
