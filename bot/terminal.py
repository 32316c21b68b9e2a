"""The terminal demo: chat with the bot on the command line, pay on the local sandbox page.

Options are shown numbered (the customer types the number or the label). When stdin is not a
terminal, each line is one customer message and the demo exits 0 at end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator

import uvicorn
from rich.console import Console
from rich.markup import escape
from starlette.applications import Starlette

from adapters.sandbox_payments import SandboxPayments
from bot.app import Overrides, Services, build
from bot.messengers import ChannelRouter
from bot.settings import Settings
from conversations.machine import Event, Resumed, Text
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Contact

logger = logging.getLogger(__name__)

TEST_CARD = "4242 4242 4242 4242"


class TerminalMessenger:
    """Print the bot's replies; remember payment links so ``--auto-pay`` can pay them."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self.links: list[str] = []

    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> None:
        self._console.print(f"[bold cyan]RecargaBot:[/] {escape(reply.text)}")
        for number, option in enumerate(reply.options, start=1):
            mark = f"{number}." if reply.numbered else "•"  # amounts: typing the figure picks it
            self._console.print(f"   [bold]{mark}[/] {escape(option.label)}")
        if reply.link:
            self.links.append(reply.link.url)
            self._console.print(
                f"   👉 {escape(reply.link.label)}: {reply.link.url}", soft_wrap=True
            )


# The settings that would reach a real vendor, and what the demo puts in their place.
_SANDBOXED: dict[str, object] = {
    "stripe_secret_key": None, "stripe_webhook_secret": None, "topup_provider": "sandbox",
    "reloadly_client_secret": None, "telegram_bot_token": None, "telegram_webhook_secret": None,
    "twilio_auth_token": None, "twilio_account_sid": None,
}  # fmt: skip


def sandboxed(settings: Settings) -> tuple[Settings, list[str]]:
    """The settings with every real vendor switched off, and the names of those that were set."""
    ignored = [
        name.upper() for name, value in _SANDBOXED.items() if getattr(settings, name) != value
    ]
    return settings.model_copy(update=_SANDBOXED), ignored


async def run_demo(settings: Settings, *, chat_id: str, auto_pay: bool, serve: bool) -> int:
    """Chat on stdin/stdout until end of input; return the exit status."""
    settings, ignored = sandboxed(settings)
    if ignored:  # real money and real messages stay out of a demo, whatever the environment
        print(f"(demo: todo es de prueba; se ignoran {', '.join(ignored)})", file=sys.stderr)
    console = Console(highlight=False)
    sock = _bind(settings) if serve else None
    if sock is not None and not settings.public_base_url:
        settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    messenger = TerminalMessenger(console)
    app = build(settings, overrides=Overrides(messenger=ChannelRouter({"terminal": messenger})))
    services: Services = app.state.services
    key = ChatKey(Channel.TERMINAL, chat_id)
    interactive = sys.stdin.isatty()
    async with services.lifetime(), _serving(app, sock):
        _intro(console, settings, sock, interactive)
        await _handle(services, key, Resumed(), console)
        async for line in _lines(console, interactive):
            await _handle(services, key, Text(line), console)
            if auto_pay:
                await _pay_new_links(services, messenger, console)
    return 0


async def _handle(services: Services, key: ChatKey, event: Event, console: Console) -> None:
    """The demo's one error handler: log the bug, apologise, keep chatting."""
    try:
        await services.chat.handle(key, event)
    except Exception:
        logger.exception("the demo could not handle a message")
        console.print(
            "[bold cyan]RecargaBot:[/] Ups, algo falló de nuestro lado. Inténtalo de nuevo."
        )


def _bind(settings: Settings) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        print(f"(sin página de pago local: {exc})", file=sys.stderr)
        sock.close()
        return None
    return sock


@contextlib.asynccontextmanager
async def _serving(app: Starlette, sock: socket.socket | None) -> AsyncIterator[None]:
    if sock is None:
        yield
        return
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await task


def _intro(
    console: Console, settings: Settings, sock: socket.socket | None, interactive: bool
) -> None:
    if not interactive:
        return
    console.print("[dim]Demo de RecargaBot: pagos y recargas de prueba. Ctrl+D para salir.[/]")
    if sock is not None:
        console.print(
            f"[dim]Página de pago de prueba en {settings.base_url} (tarjeta {TEST_CARD}).[/]"
        )


async def _lines(console: Console, interactive: bool) -> AsyncIterator[str]:
    while True:
        if interactive:
            try:
                line = await asyncio.to_thread(console.input, "[bold green]Tú:[/] ")
            except (EOFError, KeyboardInterrupt):
                return
        else:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            console.print(f"[bold green]Tú:[/] {escape(line.rstrip())}")
        if line.strip():
            yield line.strip()


async def _pay_new_links(
    services: Services, messenger: TerminalMessenger, console: Console
) -> None:
    """Pay each new sandbox link with the test card, then let the worker top up and confirm."""
    gateway = services.payments
    if not isinstance(gateway, SandboxPayments):  # run_demo keeps every real vendor out
        raise RuntimeError("the demo pays sandbox links only")
    while messenger.links:
        session_id = messenger.links.pop().rstrip("/").rsplit("/", 1)[-1]
        year = services.chat.clock().year + 2
        outcome = await gateway.pay(
            session_id, number=TEST_CARD, expiry=f"12/{year % 100:02d}", cvc="123", name="Demo"
        )
        console.print(f"[dim](pago automático con {TEST_CARD}: {outcome})[/]")
        messenger.links.clear()
        await services.worker.run_once()
