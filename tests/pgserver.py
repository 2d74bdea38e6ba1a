"""A throwaway PostgreSQL server for the test suite (loopback only, removed afterwards)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def find_bindir() -> str | None:
    """Return the newest PostgreSQL bin directory on this machine, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def free_port() -> int:
    """Return a free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl start on a free port, as an unprivileged user when run as root."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="creditbook-pg-")
        self.data = os.path.join(self.dir, "data")
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = _unprivileged_user()
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir
        )

    def start(self) -> None:
        """Create the cluster and start the server."""
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            "creditbook",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            os.path.join(self.dir, "log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def url(self, dbname: str = "postgres") -> str:
        """Return a connection URL for a database."""
        return f"postgresql://creditbook@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        for _ in range(20):
            try:
                shutil.rmtree(self.dir)
                return
            except OSError:
                time.sleep(0.1)


def _unprivileged_user() -> str:
    for name in ("postgres", "creditbook-test"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "creditbook-test"], check=True)
    return "creditbook-test"
