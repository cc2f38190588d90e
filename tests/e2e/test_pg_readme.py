"""The README's "Running on PostgreSQL" section, run as written.

Every ```bash block of the section, in order, in one shell, against a private PostgreSQL
cluster (fresh, so the role and database names of the README are free). The only changes are
the ports: 5432 becomes the private cluster's, 8000 and 8001 free ones. Then what the blocks
did is checked from the outside: the roles hold no more rights than the README says, the
servers answer, and the clients the README's requests created are in the database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from tests.e2e.pg_support import ROOT, base_env, free_port, only_on_postgres, private_cluster

pytestmark = [only_on_postgres, pytest.mark.e2e]

BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SECTION = re.compile(r"^## Running on PostgreSQL\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)


def readme_section() -> str:
    found = SECTION.search((ROOT / "README.md").read_text())
    assert found, "no 'Running on PostgreSQL' section in README.md"
    return found.group(0)


def readme_script(pg_port: int, http_ports: dict[str, int]) -> str:
    blocks = BLOCK.findall(readme_section())
    assert len(blocks) >= 6, "the 'Running on PostgreSQL' section lost its steps"
    script = "\n".join(blocks)
    assert "5432" in script
    script = script.replace("5432", str(pg_port))
    for placeholder, port in http_ports.items():
        assert placeholder in script
        script = script.replace(placeholder, str(port))
    return script


def test_every_step_of_running_on_postgresql_works_as_written(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        ports = {"8000": free_port(), "8001": free_port()}
        script = readme_script(cluster.port, ports)
        log = tmp_path / "readme.log"
        with log.open("wb") as out:
            shell = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                env=base_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the servers it starts in the background too
            )
        try:
            status = shell.wait(timeout=300)
            output = log.read_text(errors="replace")
            assert status == 0, output

            # The README's requests went through: /readyz, then a client created per server.
            assert output.count('"status":"ready"') == 2, output
            assert output.count("Client created successfully") == 2, output
            for port in ports.values():
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200

            names = cluster.psql("SELECT name FROM clients ORDER BY name", database="clients")
            assert names.splitlines() == ["Mi Primer Cliente", "Segundo Cliente"]

            # The owner role is an ordinary one: no superuser, no CREATEDB, no CREATEROLE.
            rights = cluster.psql(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                "WHERE rolname IN ('clients', 'clients_app') ORDER BY rolname"
            )
            assert rights.splitlines() == ["f|f|f|t", "f|f|f|t"]
            # It owns the database and the tables (and created pg_trgm, if the migrations
            # use it) ...
            owner = cluster.psql(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'clients'"
            )
            assert owner == "clients"
            # ... while the runtime role can use rows but not change the schema.
            refused = subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(cluster.port),
                    "-U",
                    "clients_app",
                    "-d",
                    "clients",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    "CREATE TABLE intruder (id int)",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=base_env(),
            )
            assert refused.returncode != 0
            assert "permission denied" in refused.stderr
        finally:
            with suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
            # uvicorn's supervisors stop their workers on SIGTERM; wait for the group to end.
            for _ in range(300):
                try:
                    os.killpg(shell.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            with suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
