"""`python -m app <command>`: serve, migrate, API keys, schema export, synthetic data."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from app.core.config import DEV_KEY_FILE, DEV_TEAM, VAR_DIR, Settings, get_settings


class CliError(Exception):
    pass


# One checking process beside the writing one when there is a core for it.
DEFAULT_IMPORT_JOBS = 1 if (os.cpu_count() or 1) > 1 else 0


def _run(coro_fn: Callable[[Settings], Coroutine[Any, Any, int]]) -> int:
    settings = get_settings()
    return asyncio.run(coro_fn(settings))


async def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[int]]) -> int:
    from app.db.database import Database

    db = Database(settings)
    try:
        return await fn(db)
    finally:
        await db.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    print(f"database at head: {_safe_url(settings.database_url)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # Before anything imports prometheus-client: workers then write their metrics to files
    # that /metrics adds up (app/http/metrics.py).
    from app.http.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(VAR_DIR)
    import uvicorn

    from app.core.logs import configure_logging
    from app.db.migrate import upgrade

    settings = get_settings()
    try:
        settings.resolved_secret_key()
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    upgrade(settings.database_url)
    if args.workers > 1 and settings.is_sqlite:
        print(
            "note: several workers on SQLite share one file; rate limits are per process. "
            "Use PostgreSQL to scale out.",
            file=sys.stderr,
        )
    configure_logging(settings.log_level)
    base = f"http://{args.host}:{args.port}"
    print(f"Clients gateway on {base}  (APP_ENV={settings.app_env})", flush=True)
    if not settings.is_production:
        print(f"  GraphiQL:  {base}/graphql", flush=True)
    print(f"  REST docs: {base}/docs", flush=True)
    from app.http.protocol import server_protocol

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        # uvicorn's protocol with a deadline for request headers (app/http/server.py) and
        # a JSON 400 for requests it cannot parse (app/http/protocol.py).
        http=server_protocol(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.http_keep_alive_timeout,
    )
    return 0


def cmd_create_api_key(args: argparse.Namespace) -> int:
    async def go(settings: Settings) -> int:
        async def inner(db: Any) -> int:
            from app.auth.service import ApiKeyService

            try:
                info, key = await ApiKeyService(db).create(
                    team=args.team, livemode=args.mode == "live"
                )
            except ValueError as exc:
                raise CliError(str(exc)) from None
            print(f"created {info.mode} key id={info.id} for team {info.team!r}")
            print("store it now: it is shown once, only its hash is kept")
            print(key)
            return 0

        return await _with_db(settings, inner)

    return _run(go)


def cmd_list_api_keys(args: argparse.Namespace) -> int:
    async def go(settings: Settings) -> int:
        async def inner(db: Any) -> int:
            from app.auth.service import ApiKeyService

            keys = await ApiKeyService(db).list(team=args.team)
            print(
                f"{'ID':>6}  {'PREFIX':<14} {'TEAM':<24} {'MODE':<5} {'CREATED':<20} "
                f"{'LAST USED':<20} STATUS"
            )
            for k in keys:
                print(
                    f"{k.id:>6}  {k.prefix + '…':<14} {k.team[:24]:<24} {k.mode:<5} "
                    f"{_t(k.created_at):<20} {_t(k.last_used_at):<20} "
                    f"{'revoked ' + _t(k.revoked_at) if k.revoked_at else 'active'}"
                )
            return 0

        return await _with_db(settings, inner)

    return _run(go)


def cmd_revoke_api_key(args: argparse.Namespace) -> int:
    async def go(settings: Settings) -> int:
        async def inner(db: Any) -> int:
            from app.auth.service import ApiKeyService

            info = await ApiKeyService(db).revoke(args.key_or_id.strip())
            if info is None:
                raise CliError("no such API key")
            if info.already_revoked:
                print(
                    f"key id={info.id} ({info.prefix}…) of team {info.team!r} was already "
                    f"revoked on {_t(info.revoked_at)} UTC: nothing changed"
                )
                return 0
            print(f"revoked key id={info.id} ({info.prefix}…) of team {info.team!r}")
            return 0

        return await _with_db(settings, inner)

    return _run(go)


def cmd_export_schema(args: argparse.Namespace) -> int:
    from schema import sdl

    sys.stdout.write(sdl())
    return 0


def cmd_dev_key(args: argparse.Namespace) -> int:
    """Make sure a development team and key exist; print the key the first time."""

    async def go(settings: Settings) -> int:
        async def inner(db: Any) -> int:
            from app.auth.service import ApiKeyService
            from app.core.errors import Unauthorized

            keys = ApiKeyService(db)
            if DEV_KEY_FILE.exists():
                key = DEV_KEY_FILE.read_text().strip()
                try:
                    await keys.authenticate(f"Bearer {key}")
                    print(f"Development API key: in {DEV_KEY_FILE} (team {DEV_TEAM!r}, test mode)")
                    return 0
                except Unauthorized:
                    print(f"{DEV_KEY_FILE} holds a revoked or unknown key: making a new one")
            _info, key = await keys.create(team=DEV_TEAM, livemode=False)
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            fd = os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            print(f"Development API key (team {DEV_TEAM!r}, test mode), kept in {DEV_KEY_FILE}:")
            print(f"  {key}")
            return 0

        return await _with_db(settings, inner)

    return _run(go)


def cmd_seed(args: argparse.Namespace) -> int:
    from app.ops.seed import seed

    if args.clients < 0:
        raise CliError("--clients must be >= 0")
    settings = get_settings()
    return asyncio.run(
        seed(settings, clients=args.clients, team=args.team, livemode=args.mode == "live")
    )


def cmd_export(args: argparse.Namespace) -> int:
    """A team's clients (one mode) as JSON Lines or CSV, to a file or standard output."""
    if args.output == "-":
        return _run(lambda settings: _export(settings, args, sys.stdout.buffer))
    try:
        out = open(args.output, "wb")  # noqa: SIM115  (closed below)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
    with out:
        return _run(lambda settings: _export(settings, args, out))


async def _export(settings: Settings, args: argparse.Namespace, out: Any) -> int:
    from app.auth.principal import Principal
    from app.clients.transfer import export_lines
    from app.http.deps import Services
    from app.rest.clients import client_record_json

    services = Services.build(settings)
    try:
        team_id = await services.keys.find_team_id(args.team)
        if team_id is None:
            raise CliError(f"no team named {args.team!r}")
        principal = Principal(team_id=team_id, livemode=args.mode == "live", key_id=0)
        count = 0
        async for line in export_lines(
            services.clients, principal, client_record_json, fmt=args.format
        ):
            out.write(line)
            count += 1
    finally:
        await services.db.dispose()
    rows = count - 1 if args.format == "csv" else count  # less the CSV header
    print(f"exported {rows} clients of team {args.team!r} ({args.mode})", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Create or update a team's clients (one mode) from a .csv or .jsonl file, by RFC."""
    from pathlib import Path

    from app.clients.transfer import ImportFileError, open_source

    if args.jobs < 0:
        raise CliError("--jobs must be >= 0")
    path = Path(args.file)
    errors_path = Path(args.errors or f"{args.file}.errors.jsonl")
    try:
        source, rows = open_source(path)
    except ImportFileError as exc:
        raise CliError(str(exc)) from None
    with errors_path.open("wb") as errors_file:
        report = asyncio.run(_import(get_settings(), args, source, rows, errors_file))
    failed = report.failed
    mode = args.mode
    print(
        f"imported {path} into team {args.team!r} ({mode}): {report.created} created, "
        f"{report.updated} updated, {report.unchanged} unchanged, {failed} failed",
        file=sys.stderr,
    )
    if failed:
        print(f"every failed row, with its line number and errors: {errors_path}", file=sys.stderr)
        return 1
    errors_path.unlink()
    return 0


async def _import(
    settings: Settings, args: argparse.Namespace, source: Any, rows: Any, errors_file: Any
) -> Any:
    import orjson
    from tqdm import tqdm

    from app.auth.principal import Principal
    from app.clients.transfer import ClientImporter, ImportReport, RowError
    from app.http.deps import Services

    services = Services.build(settings)
    shown = 0

    def on_error(error: RowError) -> None:
        nonlocal shown
        errors_file.write(orjson.dumps({"line": error.line, "errors": error.errors}) + b"\n")
        if shown < 10:  # the first few on the terminal too; all of them in the file
            shown += 1
            detail = "; ".join(f"{k}: {m}" for k, m in error.errors.items())
            tqdm.write(f"line {error.line}: {detail}", file=sys.stderr)

    size = source.path.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc="importing", file=sys.stderr) as bar:

        def on_batch(_report: ImportReport) -> None:
            bar.update(source.bytes_read - bar.n)

        try:
            team_id = await services.keys.team_id(args.team.strip())
            principal = Principal(team_id=team_id, livemode=args.mode == "live", key_id=0)
            with _checkers(args.jobs) as checker:
                importer = ClientImporter(services.clients, checker, in_flight=args.jobs + 1)
                return await importer.run(principal, rows, on_error, on_batch)
        finally:
            await services.db.dispose()


@contextmanager
def _checkers(jobs: int) -> Iterator[Any]:
    """Worker processes that check an import's rows while this one writes (None: none)."""
    if jobs <= 0:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: this process already runs threads (the database driver's), which fork would copy.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def cmd_deliver(args: argparse.Namespace) -> int:
    """Deliver webhooks apart from `serve` (which then runs with WEBHOOK_DELIVERY=external),
    until SIGTERM or SIGINT."""
    import signal

    from app.core.logs import configure_logging
    from app.events.runtime import EventsRuntime
    from app.http.deps import Services

    settings = get_settings()
    try:
        settings.resolved_secret_key()
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings.log_level)

    async def go() -> int:
        services = Services.build(settings)
        runtime = EventsRuntime(services, deliver=True, subscriptions=False)
        task = asyncio.create_task(runtime.run_forever())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        print("delivering webhooks (SIGTERM or Ctrl-C stops)", flush=True)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await services.db.dispose()
        return 0

    return asyncio.run(go())


def _t(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description=__doc__,
        epilog="Settings come from the environment or ./.env (see .env.example).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=summary, formatter_class=formatter)

    p = command("serve", "migrate, then serve HTTP (GraphQL, REST, docs, /metrics)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.set_defaults(fn=cmd_serve)

    p = command("migrate", "Alembic upgrade to head on DATABASE_URL")
    p.set_defaults(fn=cmd_migrate)

    p = command("create-api-key", "create a key (and the team if new); the key is printed last")
    p.add_argument("--team", required=True, help="team name")
    p.add_argument("--mode", choices=["live", "test"], default="live", help="key mode")
    p.set_defaults(fn=cmd_create_api_key)

    p = command("list-api-keys", "list keys: ids, prefixes, teams, modes, use (never a key)")
    p.add_argument("--team", help="only this team's keys (default: every team)")
    p.set_defaults(fn=cmd_list_api_keys)

    p = command(
        "revoke-api-key",
        "revoke a key at once, on every worker (a revoked key: says so, exit 0; unknown: exit 1)",
    )
    p.add_argument("key_or_id", metavar="KEY_OR_ID", help="the full key, or an id from the list")
    p.set_defaults(fn=cmd_revoke_api_key)

    p = command("export-schema", "print the GraphQL SDL")
    p.set_defaults(fn=cmd_export_schema)

    p = command("seed", "load synthetic clients (by default where the development key sees them)")
    p.add_argument("--clients", type=int, required=True, help="how many")
    p.add_argument("--team", default=DEV_TEAM, help="team name (created if new)")
    p.add_argument("--mode", choices=["live", "test"], default="test", help="clients' mode")
    p.set_defaults(fn=cmd_seed)

    p = command(
        "import",
        "create or update a team's clients by RFC from a .csv or .jsonl file (REST field names)",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help=".csv (header: REST names, address.* dotted) "
        "or .jsonl (one client per line), UTF-8 with or without BOM",
    )
    p.add_argument("--team", required=True, help="team name (created if new)")
    p.add_argument("--mode", choices=["live", "test"], default="live", help="clients' mode")
    p.add_argument("--errors", help="where to write the failed rows (default: FILE.errors.jsonl)")
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_IMPORT_JOBS,
        help="worker processes that check rows while this one writes (0: check them here)",
    )
    p.set_defaults(fn=cmd_import)

    p = command("export", "write a team's clients (one mode) as JSON Lines or CSV")
    p.add_argument("--team", required=True, help="team name")
    p.add_argument("--mode", choices=["live", "test"], default="live", help="clients' mode")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="file format")
    p.add_argument("--output", default="-", help="file to write ('-': standard output)")
    p.set_defaults(fn=cmd_export)

    p = command("deliver", "deliver webhooks apart (WEBHOOK_DELIVERY=external)")
    p.set_defaults(fn=cmd_deliver)

    p = command("dev-key", f"make sure a development key exists (kept in {DEV_KEY_FILE})")
    p.set_defaults(fn=cmd_dev_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.fn(args)
        sys.stdout.flush()  # here, where a closed pipe is handled, not at interpreter exit
        return result
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head -1`): what it wanted was printed. Point stdout at
        # /dev/null so that flushing it at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a clean message, not a trace, for operators
        if os.environ.get("DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
