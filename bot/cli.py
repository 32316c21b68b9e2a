"""The ``recargabot`` command line: ``demo`` (terminal chat), ``serve`` (web app and workers),
``db`` (schema migrations), ``catalogue`` (packages), ``promo``, ``keys``, ``retention``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

import uvicorn
from pydantic import ValidationError

from bot import catalogue_cli, logs, operators_cli, privacy_cli, promo_cli
from bot.app import Services, StartupError, build, freeze_startup_heap
from bot.settings import Settings
from bot.terminal import run_demo
from storage.crypto import WrongDataKeys
from storage.db import make_engine
from storage.migrate import new_revision, upgrade


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:  # one line per problem, each naming its setting
        for problem in error.errors():
            print(f"recargabot: {_problem(problem)}", file=sys.stderr)
        return 2
    try:
        return _COMMANDS[args.command](args, settings)
    except (WrongDataKeys, StartupError) as error:  # a setup mistake: say what to fix, no trace
        print(f"recargabot: {error}", file=sys.stderr)
        return 2


def _problem(problem: Mapping[str, Any]) -> str:
    """A settings error as one line: the setting's name (if one field) and what is wrong."""
    message = str(problem["msg"]).removeprefix("Value error, ")
    names = "_".join(str(part) for part in problem["loc"]).upper()
    return f"{names}: {message}" if names else message


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    # The chat owns the terminal: only warnings reach stderr.
    logs.configure(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    return asyncio.run(
        run_demo(settings, chat_id=args.chat, auto_pay=args.auto_pay, serve=not args.no_server)
    )


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Start the bot (database, Telegram, worker), then serve until SIGINT or SIGTERM.

    The start runs here, not in uvicorn's lifespan, so a failure is our one line (StartupError)
    rather than uvicorn's traceback."""
    given = {"host": args.host, "port": args.port}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    _log_for_operators(settings)
    app = build(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=logs.uvicorn_config(),
        lifespan="off",
        # Connections past the cap get 503; uvicorn closes idle keep-alive ones after 5 s.
        limit_concurrency=settings.http_max_connections,
    )  # fmt: skip
    server = uvicorn.Server(config)
    # Ours before the loop starts, so asyncio does not cancel the shutdown when uvicorn hands
    # a captured signal back after serving.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, server.handle_exit)
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serving(app.state.services, server))
    return 0


async def _serving(services: Services, server: uvicorn.Server) -> None:
    async with services.lifetime():
        freeze_startup_heap()
        await server.serve()


def _db(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the migrations (``upgrade``) or write a new one from the models (``revision``)."""
    _log_for_operators(settings)

    async def run() -> None:
        engine = make_engine(settings.database_url)
        try:
            if args.action == "upgrade":
                await upgrade(engine)
            else:
                await new_revision(engine, args.message)
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def _log_for_operators(settings: Settings) -> None:
    logs.configure(settings.log_level)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "demo": _demo,
    "serve": _serve,
    "db": _db,
    "keys": privacy_cli.keys_command,
    "retention": privacy_cli.retention_command,
    "promo": promo_cli.run,
    "catalogue": catalogue_cli.run,
    "operators": operators_cli.run,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recargabot", description="Recargas Claro por chat.")
    parser.add_argument(
        "--version", action="version", version=f"recargabot {version('recargabot')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="chatea con el bot en la terminal (todo de prueba)")
    demo.add_argument(
        "--auto-pay", action="store_true", help="paga los enlaces con la tarjeta 4242"
    )
    demo.add_argument("--chat", default="demo", help="id del chat (otro id = otro cliente)")
    demo.add_argument("--port", type=int, default=None, help="puerto de la página de pago local")
    demo.add_argument("--no-server", action="store_true", help="no servir la página de pago local")
    serve = commands.add_parser(
        "serve", help="sirve la app web (webhooks, página de pago) y los procesos"
    )
    serve.add_argument("--host", default=None, help="dirección donde escuchar (en vez de HOST)")
    serve.add_argument("--port", type=int, default=None, help="puerto (en vez de PORT)")
    db = commands.add_parser("db", help="migraciones del esquema de la base de datos")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("upgrade", help="aplica las migraciones pendientes")
    revision = actions.add_parser("revision", help="crea una migración desde los modelos")
    revision.add_argument("message", help="qué cambia, en pocas palabras")
    privacy_cli.add_parsers(commands)
    promo_cli.add_parser(commands)
    catalogue_cli.add_parser(commands)
    operators_cli.add_parser(commands)
    return parser
