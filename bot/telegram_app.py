"""The Telegram application: PTB as the transport, built, ordered per chat, started and stopped.

Ordering: updates of different chats run concurrently; updates of one chat run one at a time, in
the order they arrived, and wait for their turn without holding a concurrency slot
(``PerChatUpdateProcessor``). Without a public URL the bot long-polls (one process: the
in-process order is enough); with one, the webhook's inbox (``bot.telegram_inbox``) orders a
chat's updates across replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.routing import Route
from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, ApplicationBuilder, BaseUpdateProcessor

from adapters.aiohttp_request import AiohttpRequest
from adapters.telegram_messenger import ReplyBot
from bot.telegram_handlers import BotApplication, TelegramHandlers, chat_key
from bot.telegram_inbox import UpdateInbox, telegram_webhook
from conversations.service import KeyedLocks

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
UPDATE_TYPES = [Update.MESSAGE, Update.CALLBACK_QUERY]  # all the handlers below consume
MAX_CONCURRENT_UPDATES = 256
_UNBOUNDED = 2**30  # PTB's own slot count: ours are taken after the chat's turn
SEND_RETRIES = 3  # a reply refused with 429 is sent again after retry_after, at most this often
COMMANDS = [
    BotCommand("recargar", "Hacer una recarga Claro"),
    BotCommand("misrecargas", "Ver mis últimas recargas"),
    BotCommand("cancelar", "Cancelar la operación en curso"),
    BotCommand("ayuda", "Cómo funciona RecargaBot"),
]


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Process different chats concurrently and one chat's updates in arrival order.

    PTB takes one of its ``max_concurrent_updates`` slots before ``do_process_update`` runs, and
    waiting there for the chat's turn would let one chat's backlog hold every slot and stall all
    other chats. So PTB's own slots are unbounded here, and ``do_process_update`` waits for the
    chat's turn first and only then for one of this processor's ``slots``.
    """

    def __init__(self, slots: int) -> None:
        super().__init__(max_concurrent_updates=_UNBOUNDED)
        self.slots = slots
        self._slots = asyncio.Semaphore(slots)
        self._locks = KeyedLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's turn without a slot, then take a slot and run the update."""
        # Tasks start in arrival order and reach the lock without awaiting anything first (PTB's
        # unbounded semaphore never waits); asyncio locks are FIFO, so order is kept per chat.
        key = chat_key(update)
        if key is None:
            async with self._slots:
                await coroutine
            return
        async with self._locks.hold(key), self._slots:
            await coroutine

    async def initialize(self) -> None:
        """Nothing to allocate: locks are made per chat on demand."""

    async def shutdown(self) -> None:
        """Nothing to free."""


def telegram_application(settings: Settings) -> BotApplication:
    """Build the PTB Application: rate limited, concurrent, Updater only when polling."""
    token = settings.telegram_bot_token
    assert token is not None, "only built when TELEGRAM_BOT_TOKEN is set"
    # Opt in to PTB's timedelta retry_after now: otherwise every 429 raises a deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    seconds = settings.telegram_timeout_seconds
    timeouts = {"read_timeout": seconds, "write_timeout": seconds, "connect_timeout": seconds}
    bot = ReplyBot(
        token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        # aiohttp, not PTB's default httpx: ~10x the sendMessage rate on loopback (bench/).
        request=AiohttpRequest(MAX_CONCURRENT_UPDATES // 2, pool_timeout=10, **timeouts),
        get_updates_request=AiohttpRequest(1, pool_timeout=10),
        rate_limiter=AIORateLimiter(
            overall_max_rate=settings.telegram_max_messages_per_second, max_retries=SEND_RETRIES
        ),
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(PerChatUpdateProcessor(MAX_CONCURRENT_UPDATES))
    )
    if settings.public_base_url:
        builder = builder.updater(None)
    return builder.build()


@dataclass
class TelegramChannel:
    """The running side: start and stop the Application, by webhook or by long polling."""

    application: BotApplication = field(repr=False)  # PTB's repr of it prints the bot token
    webhook_url: str | None
    secret: str | None = field(repr=False)
    inbox: UpdateInbox | None = None

    async def start(self) -> None:
        """Connect (getMe), announce the commands, then take updates by webhook or polling."""
        app = self.application
        await app.initialize()
        await app.bot.set_my_commands(COMMANDS)
        if self.webhook_url:
            await app.bot.set_webhook(
                self.webhook_url, secret_token=self.secret, allowed_updates=UPDATE_TYPES
            )
        await app.start()
        if self.inbox:
            await self.inbox.resume()
        if app.updater:
            await app.updater.start_polling(allowed_updates=UPDATE_TYPES)

    async def stop(self) -> None:
        """Stop taking updates, finish the ones in hand, and close the HTTP pools."""
        app = self.application
        if app.updater and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        # A start that failed in getMe left the transports open, and PTB's shutdown skips them.
        await app.bot.shutdown()


def telegram_channel(
    application: BotApplication, settings: Settings, handlers: TelegramHandlers, inbox: UpdateInbox
) -> tuple[TelegramChannel, list[Route]]:
    """Register the handlers; add the webhook route when a public URL can receive it."""
    secret = settings.telegram_webhook_secret
    if not (settings.public_base_url and secret):
        handlers.register(application)
        return TelegramChannel(application, webhook_url=None, secret=None), []
    handlers.register(application, deduped=True)
    endpoint = telegram_webhook(inbox, secret.get_secret_value())
    route = Route(WEBHOOK_PATH, endpoint, methods=["POST"])
    channel = TelegramChannel(
        application, webhook_url=settings.base_url + WEBHOOK_PATH,
        secret=secret.get_secret_value(), inbox=inbox,
    )  # fmt: skip
    return channel, [route]
