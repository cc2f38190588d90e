"""Real server processes, started through the CLI (`python -m app serve`), for e2e tests.

`start_server(...)` is the building block (env overrides, `--workers`, waits for /healthz,
and `stop()` always kills the whole process group); the `server_factory` fixture hands it
out with cleanup guaranteed, and `server` is one SQLite-or-PostgreSQL server per module, on
the run's engine (TEST_DATABASE).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import TEST_SECRET

PYTHON = sys.executable
STARTUP_TIMEOUT = 60.0  # seconds to wait for /healthz: a bound on a hang, never an assertion


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env(var_dir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a server or CLI process: nothing inherited that could point it at
    another database, a fixed secret, no rate limit, quiet logs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "APP_", "SECRET_", "RATE_LIMIT_", "DB_", "SQLITE_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "VAR_DIR": str(var_dir),
            "APP_ENV": "development",
            "SECRET_KEY": TEST_SECRET,
            "RATE_LIMIT_PER_SECOND": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def run_cli(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m app <args>` with `env`; returns the finished process (never raises on exit)."""
    return subprocess.run(
        [PYTHON, "-m", "app", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    cwd: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another CLI command against this server's database and settings."""
        return run_cli(self.env, *args, cwd=self.cwd)

    def create_key(self, team: str, mode: str = "live") -> str:
        done = self.cli("create-api-key", "--team", team, "--mode", mode)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop the server and every worker it started (its own process group)."""
        if self._stopped:
            return self.process.returncode
        self._stopped = True
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=timeout)
        finally:
            # Whatever happened, nothing of this group outlives the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        self.stop(signal.SIGKILL)


def start_server(
    workdir: Path,
    *,
    database_url: str | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Server:
    """Start `python -m app serve` and wait until /healthz answers.

    `workdir` holds the var dir, the log and (by default) the SQLite database. `env`
    overrides any variable, DATABASE_URL included.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    var_dir = workdir / "var"
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'clients.db'}"
    full_env = base_env(var_dir, url, **(env or {}))
    port = port or free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)],
            env=full_env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches every worker
        )
    server = Server(process, f"http://127.0.0.1:{port}", full_env, workdir, log_path)
    try:
        _wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if not server.alive():
            raise RuntimeError(
                f"server exited with {server.process.returncode} before answering:\n{server.log()}"
            )
        try:
            r = httpx.get(f"{server.base_url}/healthz", timeout=2)
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT}s:\n{server.log()}")
        time.sleep(0.1)


ServerFactory = Callable[..., Server]


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`server_factory(database_url=..., workers=..., env=..., workdir=...)`: servers stopped
    after the test. Pass a previous server's `cwd` as `workdir` to restart on its files."""
    started: list[Server] = []

    def factory(workdir: Path | None = None, **kwargs: object) -> Server:
        workdir = workdir or tmp_path_factory.mktemp("server")
        server = start_server(workdir, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per module on this run's engine and a fresh database."""
    srv = start_server(tmp_path_factory.mktemp("server"), database_url=database_url)
    try:
        yield srv
    finally:
        srv.stop()
