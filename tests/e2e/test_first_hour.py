"""A newcomer's first hour, against a real server started by the CLI:

- the README's quick-start curl commands and its GraphQL examples, run exactly as written (only
  the port is the test server's), find what they have just created;
- every CLI command has --help with its defaults; `seed` fills what the development key sees
  and says so; a closed pipe is not an error; revoking a revoked key says so;
- a raw (not percent-encoded) accented URL gets the JSON error envelope from the HTTP server.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PYTHON, Server, run_cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
COMMANDS = [
    "serve",
    "migrate",
    "create-api-key",
    "list-api-keys",
    "revoke-api-key",
    "export-schema",
    "seed",
    "dev-key",
    "import",
    "export",
]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def _as_written(block: str, server: Server) -> str:
    """The README's commands, pointed at the test server (the only change)."""
    return block.replace("http://127.0.0.1:8000", server.base_url)


@pytest.fixture(scope="module")
def dev_key(server: Server) -> str:
    done = server.cli("dev-key")
    assert done.returncode == 0, done.stderr
    return (server.cwd / "var" / "dev-api-key").read_text().strip()


def test_quick_start_curl_finds_what_it_created(server: Server, dev_key: str) -> None:
    quick_start = _blocks("bash")[1]
    assert quick_start.startswith("KEY=$(cat var/dev-api-key)")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _as_written(quick_start, server)],
        cwd=server.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    created_text, listed_text = done.stdout.split("}{", 1)
    created = json.loads(created_text + "}")
    listed = json.loads("{" + listed_text)
    assert created["message"] == "Client created successfully", created
    assert [c["id"] for c in listed["data"]] == [created["data"]["id"]]


def test_graphql_examples_find_what_they_created(server: Server, dev_key: str) -> None:
    mutation, query = _blocks("graphql")[:2]
    headers = {"Authorization": f"Bearer {dev_key}"}
    created = httpx.post(f"{server.base_url}/graphql", json={"query": mutation}, headers=headers)
    result = created.json()["data"]["createClient"]
    assert result["__typename"] == "Client", result
    found = httpx.post(f"{server.base_url}/graphql", json={"query": query}, headers=headers)
    nodes = found.json()["data"]["clients"]["nodes"]
    assert [n["id"] for n in nodes] == [result["id"]]
    curl = next(b for b in _blocks("bash") if "/graphql" in b and "curl" in b)
    done = subprocess.run(
        ["bash", "-c", "KEY=" + dev_key + "\n" + _as_written(curl, server)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    answer = json.loads(done.stdout)
    assert answer["data"]["clients"]["totalCount"] >= 1, answer


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_defaults(server: Server, command: str) -> None:
    done = server.cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m app " + command)
    if command in ("serve", "create-api-key", "seed", "import", "export"):
        assert "(default: " in done.stdout


def test_seed_fills_what_the_development_key_sees(server: Server, dev_key: str) -> None:
    done = server.cli("seed", "--clients", "25")
    assert done.returncode == 0, done.stderr
    assert "team 'development' (test)" in done.stdout
    page = httpx.get(
        f"{server.base_url}/v2/clients?limit=1", headers={"Authorization": f"Bearer {dev_key}"}
    )
    assert page.json()["totalResults"] >= 25


def test_a_closed_pipe_is_not_an_error(server: Server) -> None:
    reader = subprocess.Popen(
        [PYTHON, "-m", "app", "list-api-keys"],
        env=server.env,
        cwd=server.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # as `| head -1` does once it has its line
    errors = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 0, errors
    assert "BrokenPipe" not in errors and "Traceback" not in errors


def test_revoking_a_revoked_key_says_so(server: Server) -> None:
    key = server.create_key("revoke-twice")
    first = server.cli("revoke-api-key", key)
    assert first.returncode == 0 and first.stdout.startswith("revoked key id="), first
    again = server.cli("revoke-api-key", key)
    assert again.returncode == 0, again.stderr
    assert "was already revoked on" in again.stdout and "nothing changed" in again.stdout
    unknown = run_cli(server.env, "revoke-api-key", "999999999", cwd=server.cwd)
    assert unknown.returncode == 1 and "no such API key" in unknown.stderr


def test_a_raw_accented_url_gets_the_json_envelope(server: Server) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall("GET /v2/clients?name=méxico HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), raw
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "percent-encoded" in error["details"]["request"]


def test_env_example_lists_every_setting() -> None:
    from app.core.config import Settings

    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    expected = {name.upper() for name in Settings.model_fields} | {"VAR_DIR"}
    assert expected <= listed, expected - listed


def test_import_reports_bad_rows_and_imports_the_others(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(
        b"name,rfc,color\nUno,MAB9307148T4,x\nSin RFC,,y\n\xff\xfe\nDos,GODE561231GR8,z\n"
    )
    done = server.cli("import", str(path), "--team", "importers")
    assert done.returncode == 1, done.stderr
    assert "2 created" in done.stderr and "3 failed" in done.stderr
    errors = [json.loads(x) for x in Path(f"{path}.errors.jsonl").read_text().splitlines()]
    assert sorted(e["line"] for e in errors) == [1, 3, 4]
    again = server.cli("import", str(path), "--team", "importers")
    assert "0 created" in again.stderr and "2 unchanged" in again.stderr
    exported = server.cli("export", "--team", "importers", "--format", "csv")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 3
    missing = server.cli("import", str(tmp_path / "nope.csv"), "--team", "importers")
    assert missing.returncode == 1 and "no such file" in missing.stderr
