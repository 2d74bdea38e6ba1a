"""The command line: every command, run in-process, plus a real ``serve --demo``."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from typing import Any

import pytest

from creditbook.cli import main
from helpers import Server


class Cli:
    """Run ``creditbook`` commands against one database and capture the output."""

    def __init__(
        self, database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.database = database
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            import io

            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main([*args, "--database", self.database])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str, stdin: str | None = None) -> Any:
        code, out, err = self(*args, "--json", stdin=stdin)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(database, capsys, monkeypatch)


def test_admin_commands(cli: Cli) -> None:
    """admin add (stdin password or generated), list, disable, enable."""
    assert (
        cli(
            "admin", "add", "root", "--password-stdin", "--firstname", "R", stdin="pw-0123456789\n"
        )[0]
        == 0
    )
    generated = cli.json("admin", "add", "ops", stdin="")
    assert len(generated["password"]) >= 16
    admins = cli.json("admin", "list")
    assert [a["username"] for a in admins] == ["root", "ops"]
    assert cli("admin", "disable", "ops")[1] == "Disabled admin ops\n"
    assert cli.json("admin", "list")[1]["disabled"] is True
    cli("admin", "enable", "ops")
    assert cli.json("admin", "list")[1]["disabled"] is False
    code, _, err = cli("admin", "add", "root", "--password-stdin", stdin="x-0123456789\n")
    assert (code, err) == (1, "error: An administrator with that username already exists\n")
    code, _, err = cli("admin", "disable", "ghost")
    assert (code, err) == (1, "error: Administrator Not Found\n")


def test_admin_console_access(cli: Cli) -> None:
    """admin add --access, set-access, and the access in admin list."""
    assert cli("admin", "add", "ann", "--password-stdin", stdin="pw-0123456789\n")[0] == 0
    code, out, _ = cli(
        "admin", "add", "bob", "--password-stdin", "--access", "viewer", stdin="p-0123456789\n"
    )
    assert code == 0 and "console access viewer" in out
    assert [a["access"] for a in cli.json("admin", "list")] == ["manager", "viewer"]
    assert cli("admin", "set-access", "bob", "OWNER")[1] == (
        "Admin bob now has owner access to the console\n"
    )
    assert cli.json("admin", "list")[1]["access"] == "owner"
    with pytest.raises(SystemExit):
        cli("admin", "set-access", "bob", "god")
    assert "invalid choice: 'god'" in cli.capsys.readouterr().err
    code, _, err = cli("admin", "set-access", "ghost", "viewer")
    assert (code, err) == (1, "error: Administrator Not Found\n")
    _, out, _ = cli("config", "list")
    assert "console_idle_minutes" in out and "console_session_hours" in out


def test_credential_commands(cli: Cli) -> None:
    """credential add prints the secret once; list never shows it; revoke deletes it."""
    cli("admin", "add", "root", "--password-stdin", stdin="pw-0123456789\n")
    created = cli.json("credential", "add", "root", "--description", "billing")
    assert set(created) == {"identifier", "secret", "roles"}
    code, out, _ = cli("credential", "add", "root")
    assert code == 0 and "full access" in out and "Secret:" in out
    listed = cli.json("credential", "list")
    assert [c["description"] for c in listed] == ["billing", ""]
    assert created["secret"] not in json.dumps(listed)
    assert cli("credential", "revoke", created["identifier"])[0] == 0
    assert len(cli.json("credential", "list")) == 1
    assert cli("credential", "revoke", created["identifier"])[2] == (
        "error: Credential Not Found\n"
    )
    assert cli("credential", "add", "ghost")[2] == "error: Administrator Not Found\n"


def test_client_and_credit_commands(cli: Cli) -> None:
    """client add/list, credit add/remove with API rules, and credits history."""
    assert cli.json(
        "client",
        "add",
        "--firstname",
        "A",
        "--lastname",
        "B",
        "--email",
        "a@example.com",
        "--company",
        "ACME",
        "--currency",
        "eur",
    ) == {"id": 1}
    code, _, err = cli("client", "add", "--firstname", "A", "--lastname", "B", "--email", "bad")
    assert (code, err) == (1, "error: The email address you entered was not valid\n")
    listed = cli.json("client", "list")
    assert listed["clients"][0]["currency"] == "EUR" and listed["total"] == 1
    assert cli("credit", "add", "1", "12.1", "--description", "top up")[1] == (
        "New balance: 12.10\n"
    )
    assert cli.json("credit", "remove", "1", "2.10", "--description", "fee") == {
        "result": "success",
        "newbalance": "10.00",
    }
    assert cli("credit", "remove", "1", "10.01", "--description", "x")[2] == (
        "error: Amount exceeds customer credit balance\n"
    )
    assert cli("credit", "add", "1", "1e3", "--description", "x")[2] == (
        "error: Amount must be in decimal format: ### or ###.##\n"
    )
    assert cli("credit", "add", "9", "1", "--description", "x")[2] == (
        "error: Client ID Not Found\n"
    )
    code, out, _ = cli("credits", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "DATE", "AMOUNT", "BALANCE", "CATEGORY", "EXPIRES", "LEFT", "ADMIN", "DESCRIPTION"
    ]  # fmt: skip
    assert lines[1].split()[2:7] == ["12.10", "12.10", "paid", "-", "10.00"]
    assert lines[2].split()[2:8] == ["-2.10", "10.00", "-", "-", "from", "#1"]
    history = cli.json("credits", "1")
    assert [h["balance"] for h in history] == ["12.10", "10.00"]
    cli("admin", "add", "root", "--password-stdin", stdin="pw-0123456789\n")
    cli("credit", "add", "1", "1", "--description", "attributed", "--admin", "root")
    assert cli.json("credits", "1")[-1]["adminid"] == 1


def test_migrate_and_errors(cli: Cli, tmp_path: object) -> None:
    """migrate is idempotent; user mistakes print one line and exit non-zero."""
    from creditbook.store.sql import migrations

    numbers = ", ".join(str(n) for n, _ in migrations("sqlite"))
    assert cli("migrate")[1] in (
        "The database is up to date.\n",
        f"Applied migrations: {numbers}\n",
    )
    assert cli("migrate")[1] == "The database is up to date.\n"
    code, _, err = cli("credits", "nope")
    assert (code, err) == (1, "error: Client ID Not Found\n")


def test_bad_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An unusable database path is reported without a traceback."""
    code = main(["client", "list", "--database", "/nonexistent/dir/x.db"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


def test_help_runs_as_module() -> None:
    """python -m creditbook --help works and lists the commands."""
    out = subprocess.run(
        [sys.executable, "-m", "creditbook", "--help"], check=True, capture_output=True, text=True
    ).stdout
    for command in ("serve", "admin", "credential", "client", "credit", "credits", "migrate"):
        assert command in out


@pytest.mark.parametrize(
    "command",
    [
        ["admin", "add"],
        ["admin", "disable"],
        ["admin", "list"],
        ["admin", "set-access"],
        ["credential", "add"],
        ["credential", "list"],
        ["credential", "revoke"],
        ["client", "add"],
        ["client", "list"],
        ["credit", "add"],
        ["credit", "remove"],
        ["credits"],
        ["serve"],
        ["migrate"],
        ["verify"],
        ["ip", "allow"],
        ["ip", "deny"],
        ["ip", "list"],
        ["config", "set"],
        ["config", "get"],
        ["config", "list"],
        ["role", "add"],
        ["role", "list"],
        ["log"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command documents itself and its --database option."""
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "--database" in capsys.readouterr().out


def test_serve_demo_prints_a_curl_that_works(tmp_path: object) -> None:
    """serve --demo seeds an empty database and prints a ready-to-paste AddCredit curl."""
    server = Server(f"{tmp_path}/demo.db", "--demo")
    with server:
        output = server.output()
        curl = next(
            line.strip() for line in output.splitlines() if line.strip().startswith("curl ")
        )
        assert f"http://127.0.0.1:{server.port}/includes/api.php" in curl
        result = subprocess.run(shlex.split(curl), capture_output=True, text=True, check=True)
        assert json.loads(result.stdout) == {"result": "success", "newbalance": "12.34"}
    again = Server(f"{tmp_path}/demo.db", "--demo")
    with again:
        assert "already has admins" in again.output()


@pytest.mark.parametrize(
    ("cores", "backup", "restore"), [(1, 1, 1), (2, 1, 2), (4, 3, 4), (16, 4, 4)]
)
def test_verification_processes_by_default(
    monkeypatch: pytest.MonkeyPatch, cores: int, backup: int, restore: int
) -> None:
    """A backup's verification leaves a core to the service; a restore's uses them all (<= 4)."""
    from creditbook.cli import operations

    monkeypatch.setattr(operations.os, "cpu_count", lambda: cores)
    assert operations._jobs(argparse.Namespace(jobs=None), spare=1) == backup
    assert operations._jobs(argparse.Namespace(jobs=None)) == restore
    assert operations._jobs(argparse.Namespace(jobs=3), spare=1) == 3
