"""The ``recargabot`` command line: ``demo`` (terminal chat), ``serve`` (web app and workers),
``db`` (schema migrations)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

import uvicorn

from bot import logs, operators_cli, privacy_cli, promo_cli
from bot.app import build
from bot.settings import Settings
from bot.terminal import run_demo
from storage.crypto import WrongDataKeys
from storage.db import make_engine
from storage.migrate import new_revision, upgrade


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args, Settings())
    except WrongDataKeys as error:  # a setup mistake: say what to fix, no traceback
        print(f"recargabot: {error}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    # The chat owns the terminal: only warnings reach stderr.
    logs.configure(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    return asyncio.run(
        run_demo(settings, chat_id=args.chat, auto_pay=args.auto_pay, serve=not args.no_server)
    )


def _serve(_: argparse.Namespace, settings: Settings) -> int:
    _log_for_operators(settings)
    uvicorn.run(
        build(settings), host=settings.host, port=settings.port, log_config=logs.uvicorn_config()
    )
    return 0


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
    "operators": operators_cli.run,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recargabot", description="Recargas Claro por chat.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="chatea con el bot en la terminal (todo de prueba)")
    demo.add_argument(
        "--auto-pay", action="store_true", help="paga los enlaces con la tarjeta 4242"
    )
    demo.add_argument("--chat", default="demo", help="id del chat (otro id = otro cliente)")
    demo.add_argument("--port", type=int, default=None, help="puerto de la página de pago local")
    demo.add_argument("--no-server", action="store_true", help="no servir la página de pago local")
    commands.add_parser("serve", help="sirve la app web (webhooks, página de pago) y los procesos")
    db = commands.add_parser("db", help="migraciones del esquema de la base de datos")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("upgrade", help="aplica las migraciones pendientes")
    revision = actions.add_parser("revision", help="crea una migración desde los modelos")
    revision.add_argument("message", help="qué cambia, en pocas palabras")
    privacy_cli.add_parsers(commands)
    promo_cli.add_parser(commands)
    operators_cli.add_parser(commands)
    return parser
