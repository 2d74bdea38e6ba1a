"""Packaging and the service: one version (``creditbook --version``, the package metadata and
CHANGELOG's latest release agree); a wheel and an sdist that ``twine check`` passes, the wheel
installed alone into a clean virtual environment serving the API and the console's assets; the
systemd unit in docs/deploy accepted by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import pytest

from creditbook.version import __version__
from helpers import free_port, missing

ROOT = Path(__file__).resolve().parent.parent


def test_one_version_everywhere() -> None:
    out = subprocess.run([sys.executable, "-m", "creditbook", "--version"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == f"creditbook {__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.M)
    assert released and released[0] == __version__
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in project  # the version lives in creditbook/version.py


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("SYSTEMD", "systemd-analyze not found: apt-get install systemd")
    unit = (ROOT / "docs" / "deploy" / "creditbook.service").read_text(encoding="utf-8")
    for directive in ("ProtectSystem=strict", "StateDirectory=creditbook", "NoNewPrivileges=yes",
                      "Restart=on-failure", "DynamicUser=yes"):  # fmt: skip
        assert directive in unit
    # verify checks that ExecStart's program exists: this machine's creditbook stands in.
    program = shutil.which("creditbook") or str(Path(sys.executable).parent / "creditbook")
    target = tmp_path / "creditbook.service"
    target.write_text(unit.replace("/opt/creditbook/bin/creditbook", program), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(target)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "creditbook.service" not in done.stderr, done.stderr


@pytest.mark.slow
def test_the_wheel_alone_serves_the_api_and_the_console(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)  # fmt: skip
    wheels = list(dist.glob("creditbook-*.whl"))
    sdists = list(dist.glob("creditbook-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    assert f"-{__version__}-" in wheels[0].name
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels),
                            *map(str, sdists)], capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Nothing of this checkout may leak in: the clean environment sees only the wheel.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheels[0])], check=True, capture_output=True, env=clean)  # fmt: skip
    program = env_dir / "bin" / "creditbook"
    version = subprocess.run([str(program), "--version"], capture_output=True, text=True,
                             cwd=tmp_path, check=True, env=clean)  # fmt: skip
    assert version.stdout.strip() == f"creditbook {__version__}"
    port = free_port()
    database = f"sqlite:///{tmp_path}/wheel.db"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(program), "serve", "--port", str(port), "--database", database, "--demo"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=clean,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError(log.read_text())
            assert httpx.get(base + "/admin/login").status_code == 200
            css = httpx.get(base + "/admin/static/pico.min.css")
            assert css.status_code == 200 and len(css.content) > 10_000
            assert httpx.get(base + "/admin/static/passkeys.js").status_code == 200
            reply = httpx.post(base + "/includes/api.php", data={"action": "GetCredits",
                               "clientid": "1", "responsetype": "json"})  # fmt: skip
            assert reply.json()["result"] == "error"  # answered by the API (no credentials)
        finally:
            server.terminate()
            assert server.wait(timeout=30) == 0
    migrated = subprocess.run([str(program), "migrate", "--database", database],
                              capture_output=True, text=True, cwd=tmp_path, env=clean)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
