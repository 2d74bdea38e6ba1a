"""Commands for auditors and operators: verify, seal, backup, restore."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import errors
from ..backup import Copied, backup, restore
from ..ledger import Ledger
from .common import print_json

_HEX64 = re.compile(r"[0-9a-f]{64}")
VERIFY_JOBS = (
    "processes verifying the copy (default: one per core, at most 4; a backup leaves one core "
    "to the service)"
)


def _jobs(args: argparse.Namespace, spare: int = 0) -> int:
    """Processes to verify a copy with: ``--jobs``, else one per core up to 4, ``spare`` cores
    left over (the check reads only the copy, and a backup's runs at nice 10)."""
    return int(args.jobs or max(1, min((os.cpu_count() or 1) - spare, 4)))


def verify_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Recompute balances, running balances and hash chains; with --seal, check a seal too."""
    from ..audit import verify, verify_seal

    report = verify(ledger.store, progress=sys.stderr if args.progress else None, jobs=args.jobs)
    if args.seal:
        report.problems += verify_seal(ledger.store, _digest(args.seal))
    if args.json:
        print_json(report.as_dict())
    else:
        for line in report.problems[:50]:
            print(line)
        sealed = " and the seal holds" if args.seal and report.ok else ""
        print(
            f"Checked {report.clients} clients and {report.entries} entries "
            f"in {report.seconds:.2f} s: "
            + (
                f"no drift, every chain intact{sealed}."
                if report.ok
                else f"{len(report.problems)} problem(s)."
            )
        )
    return 0 if report.ok else 1


def _digest(text: str) -> str:
    """A seal digest given as hex, or as a file (the JSON of ``seal --json``, or plain text).

    What is not a digest is refused without being echoed: the file may be anything.
    """
    digest = text.strip().lower()
    if os.path.isfile(text):
        with open(text, encoding="utf-8", errors="replace") as f:
            content = f.read(1_000_000).strip()
        try:
            data = json.loads(content)
        except (ValueError, RecursionError):
            data = None
        found = data.get("digest", "") if isinstance(data, dict) else content.split()[:1]
        digest = str(found if isinstance(found, str) else "".join(found)).lower()
    if not _HEX64.fullmatch(digest):
        raise errors.ValidationError(
            "--seal takes a seal's digest (64 hexadecimal characters) or a file holding one "
            "(what seal --json printed)"
        )
    return digest


def seal_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Record and print a digest over every client's chain head (keep it outside the system)."""
    seal, _ = ledger.store.seal(ledger.now())
    record = {
        "digest": seal.digest,
        "at": seal.at,
        "clients": seal.clients,
        "entries": seal.entries,
        "id": seal.id,
    }
    if args.json:
        print_json(record)
    else:
        print(f"Seal {seal.digest}")
        print(f"  taken {seal.at} over {seal.clients} clients and {seal.entries} entries")
        print("Keep the digest outside this system; check it with: creditbook verify --seal DIGEST")
    return 0


def backup_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Back up the running store into a new SQLite file, verified before success is reported."""

    show = args.progress or sys.stderr.isatty()

    def background() -> Copied:
        # A backup is background work next to the service it copies: it yields the CPU (its
        # verification is pure Python). On Linux a nice value belongs to a thread: only this
        # one, and the threads it starts, yield; a caller's own thread keeps its priority.
        # Its verification leaves a core to the service: niced processes on every core still
        # doubled the service's p99 (65 against 38 ms on two cores, side by side).
        os.nice(10)
        return backup(
            ledger.store,
            args.dest,
            progress=sys.stderr if show else None,
            jobs=_jobs(args, spare=1),
        )

    with ThreadPoolExecutor(1, thread_name_prefix="creditbook-backup") as pool:
        copied = pool.submit(background).result()
    return _report("Backup", copied, args.json)


def restore_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Restore a backup file into an empty store, verified."""
    progress = sys.stderr if args.progress else None
    copied = restore(args.source, args.target, progress=progress, jobs=_jobs(args))
    return _report("Restore", copied, args.json)


def _report(what: str, copied: Copied, as_json: bool) -> int:
    rows = copied.rows
    if as_json:
        print_json({"ok": copied.ok, "path": copied.path, "rows": rows, **copied.report.as_dict()})
    else:
        for line in copied.report.problems[:50]:
            print(line)
        state = "verified" if copied.ok else "FAILED verification"
        print(
            f"{what} {state}: {copied.path} ({rows.get('clients', 0)} clients, "
            f"{rows.get('credits', 0)} entries, {sum(rows.values())} rows in all)"
        )
    if not copied.ok:
        raise errors.StoreError(f"{what.lower()} did not verify")
    return 0
