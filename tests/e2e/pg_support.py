"""Helpers of the PostgreSQL end-to-end tests (tests/e2e/test_pg_*.py): a private PostgreSQL
cluster that a test creates, stops, freezes and starts itself, and real `python -m app`
processes (the CLI, and `serve` with workers).

These tests belong to the PostgreSQL half of the suite (TEST_DATABASE=postgres); the SQLite
half skips them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
ENGINE = os.environ.get("TEST_DATABASE", "sqlite").strip().lower() or "sqlite"

only_on_postgres = pytest.mark.skipif(
    ENGINE != "postgres",
    reason="PostgreSQL end-to-end test: runs in the TEST_DATABASE=postgres half",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """The environment of an `app` process: this interpreter's venv first on PATH, no
    inherited app settings, then `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DATABASE_", "DB_", "APP_", "SECRET_", "RATE_LIMIT_", "SQLITE_", "LOG_LEVEL", "PG")
        )
    }
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_app(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120) -> str:
    """`python -m app ARGS`; its standard output (fails the test on a non-zero exit)."""
    proc = subprocess.run(
        [PYTHON, "-m", "app", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"python -m app {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc.stdout


def create_api_key(env: Mapping[str, str], cwd: Path, team: str) -> tuple[str, int]:
    """A new key through the CLI: (key, id)."""
    out = run_app(["create-api-key", "--team", team], env, cwd)
    lines = out.strip().splitlines()
    key_id = int(lines[0].split("id=")[1].split()[0])
    return lines[-1], key_id


# -- a private PostgreSQL cluster -----------------------------------------------------------


class PrivateCluster:
    """A PostgreSQL cluster of its own in a temporary folder, on its own loopback port.

    As root the server runs as the `postgres` OS user (PostgreSQL refuses root), otherwise as
    the current user. Trust authentication, loopback only, fsync off (throw-away data).
    """

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="cg-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.dir.chmod(0o700)

    @staticmethod
    def available() -> str | None:
        """Why a private cluster cannot be made here (None when it can)."""
        if not (PG_BIN / "initdb").exists():
            return f"no PostgreSQL binaries in {PG_BIN} (set PG_BIN)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no `postgres` OS user"
        return None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {proc.stderr}{proc.stdout}{self._log_tail()}")
        return proc

    def _log_tail(self) -> str:
        try:
            return "\n--- server log ---\n" + self.log.read_text()[-2000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        return (
            self._run(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False
            ).returncode
            == 0
        )

    def _pids(self) -> list[int]:
        """The postmaster and its children (every process of this cluster)."""
        postmaster = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(postmaster)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        return [postmaster, *(int(p) for p in children)]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the cluster stopped (SIGSTOP): connections open but nothing
        answers, as behind a network partition. Thawed on exit."""
        pids = self._pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def psql(self, sql: str, database: str = "postgres") -> str:
        proc = self._run(
            str(PG_BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )
        return proc.stdout.strip()

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        if self.data.exists() and self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    reason = PrivateCluster.available()
    if reason:
        pytest.skip(f"cannot make a private PostgreSQL cluster: {reason}")
    cluster = PrivateCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# -- a server process -----------------------------------------------------------------------


class Server:
    """`python -m app serve` in its own process group, on a free loopback port."""

    def __init__(self, env: Mapping[str, str], cwd: Path, *, workers: int = 1) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.output = cwd / f"server-{self.port}.log"
        self._out = self.output.open("wb")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "app",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=dict(env),
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, limit: int | None = 3000) -> str:
        text = self.output.read_text(errors="replace")
        return text if limit is None else text[-limit:]

    def wait_ready(self, path: str = "/healthz", attempts: int = 600) -> None:
        """Until `path` answers 200 (bounded: `attempts` tries 0.1 s apart)."""
        for _ in range(attempts):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.base_url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready on {self.base_url}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGTERM to its own group: uvicorn's supervisor and its workers.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        with suppress(ProcessLookupError):  # a worker left behind by a supervisor that died
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._out.close()


@contextmanager
def running_server(env: Mapping[str, str], cwd: Path, *, workers: int = 1) -> Iterator[Server]:
    server = Server(env, cwd, workers=workers)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
