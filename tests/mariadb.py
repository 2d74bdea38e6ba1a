"""A throwaway MariaDB server for the test suite (loopback only, removed afterwards)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from pgserver import free_port


def find_mariadbd() -> str | None:
    """Return the MariaDB server binary on this machine, or None."""
    for name in ("mariadbd", "mysqld"):
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin"):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                return path
    return shutil.which("mariadbd")


class MariaDBServer:
    """mariadb-install-db + mariadbd on a free loopback port, root without a password."""

    def __init__(self, mariadbd: str) -> None:
        self.mariadbd = mariadbd
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="creditbook-mariadb-")
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = "root" if os.geteuid() == 0 else ""

    def start(self) -> None:
        """Create the data directory and start the server; wait until it answers."""
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if install is None:
            raise RuntimeError("mariadb-install-db not found")
        user = ["--user=" + self.user] if self.user else []
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log = open(os.path.join(self.dir, "log"), "wb")  # noqa: SIM115 closed in stop()
        self.proc = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={os.path.join(self.dir, 'pid')}",
                "--innodb-buffer-pool-size=128M",
                "--innodb-flush-log-at-trx-commit=2",
                "--skip-log-bin",
                *user,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import pymysql

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.output()}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except pymysql.MySQLError:
                time.sleep(0.2)
        raise RuntimeError(f"mariadbd did not start: {self.output()}")

    def output(self) -> str:
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def url(self, database: str) -> str:
        """A ``mysql://`` URL for a database on this server."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "log"):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
