"""The ``recargabot`` command line: ``demo`` (terminal chat) and ``serve`` (web app and workers)."""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn

from bot.app import build
from bot.settings import Settings
from bot.terminal import run_demo


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.command == "demo":
        # The chat owns the terminal: only warnings reach stderr.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if args.port is not None:
            settings = settings.model_copy(update={"port": args.port})
        return asyncio.run(
            run_demo(settings, chat_id=args.chat, auto_pay=args.auto_pay, serve=not args.no_server)
        )
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(build(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


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
    return parser
