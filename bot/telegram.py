"""The Telegram edge: PTB is the transport, the conversation core decides everything.

Handlers only translate updates into core events (``Text``, ``Choice``) and hand them to
``ChatService.handle``; there is no ``ConversationHandler`` because the flow and its state live
in ``conversations/`` and the database, shared with the other channels and the payment webhooks.

Ordering: updates of different chats run concurrently; updates of one chat run one at a time, in
the order they arrived, and wait for their turn without holding a concurrency slot
(``PerChatUpdateProcessor``). Telegram repeats deliveries, so every update first passes
``first_delivery``, which records its ``update_id`` and drops a repeat (still answering a repeated
button press, so its spinner stops).

In webhook mode (``PUBLIC_BASE_URL`` set) the Application has no Updater: the Starlette route
checks the secret header and keeps the update in the database (``UpdateInbox``) before it answers,
so a chat's updates are handled in update_id order even when they reach different replicas.
Keeping it records the delivery too, so there ``first_delivery`` only stops updates without a
chat. Without a public URL it long-polls instead (one process: the in-process order is enough).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import BotCommand, CallbackQuery, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseHandler,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.aiohttp_request import AiohttpRequest
from adapters.telegram_messenger import POSITION_PREFIX
from conversations.cards import has_card_number
from conversations.catalog import soles
from conversations.machine import Choice, Event, Text
from conversations.masking import mask_chat
from conversations.messages import LIMA, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import ChatLocks, Contacts, Messenger
from conversations.service import ChatService, KeyedLocks

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage.repositories import OrderStats

logger = logging.getLogger(__name__)

# Ours is built with PTB's default context, bot data and job queue types; none is used as typed.
BotApplication = Application[Any, Any, Any, Any, Any, Any]
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
UPDATE_TYPES = [Update.MESSAGE, Update.CALLBACK_QUERY]  # all the handlers below consume
MAX_CONCURRENT_UPDATES = 256
PARSED_KEPT = 1_000  # parsed updates held for their drain (UpdateInbox)
SEND_RETRIES = 3  # a reply refused with 429 is sent again after retry_after, at most this often
COMMANDS = [
    BotCommand("recargar", "Hacer una recarga Claro"),
    BotCommand("misrecargas", "Ver mis últimas recargas"),
    BotCommand("cancelar", "Cancelar la operación en curso"),
    BotCommand("ayuda", "Cómo funciona RecargaBot"),
]
NOT_ADMIN = "Lo siento, ese comando es solo para administradores."
PRIVATE_ONLY = (
    "Las recargas se hacen por chat privado, para cuidar tus datos. Escríbeme aquí: {link}"
)

Context = ContextTypes.DEFAULT_TYPE
StatsReader = Callable[..., Awaitable["OrderStats"]]


class AuditLog(Protocol):
    async def record(
        self, *, actor: str, action: str, allowed: bool, at: datetime, target: str | None = None
    ) -> None: ...


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Process different chats concurrently and one chat's updates in arrival order.

    PTB's ``process_update`` (marked final, for type checkers only) takes one of the
    ``max_concurrent_updates`` slots before ``do_process_update`` runs. Waiting there for the
    chat's lock would let one chat's backlog hold every slot and stall all other chats, so it is
    overridden to wait for the chat's turn first and only then for a slot.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks = KeyedLocks()

    # PTB marks this final; overriding it is the point (see the class docstring).
    async def process_update(  # type: ignore[misc]  # final in PTB: the override above says why
        self, update: object, coroutine: Awaitable[Any]
    ) -> None:
        """Wait for the chat's turn without a slot, then take a slot and run the update."""
        # Tasks start in arrival order and reach the lock without awaiting anything first;
        # asyncio locks are FIFO, so order is kept per chat.
        key = chat_key(update)
        if key is None:
            await super().process_update(update, coroutine)
            return
        async with self._locks.hold(key):
            await super().process_update(update, coroutine)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update: its chat's turn and a slot are already held."""
        await coroutine

    async def initialize(self) -> None:
        """Nothing to allocate: locks are made per chat on demand."""

    async def shutdown(self) -> None:
        """Nothing to free."""


def chat_key(update: object) -> ChatKey | None:
    """The conversation an update belongs to, if it has a chat."""
    chat = update.effective_chat if isinstance(update, Update) else None
    return ChatKey(Channel.TELEGRAM, str(chat.id)) if chat else None


def telegram_application(settings: Settings) -> BotApplication:
    """Build the PTB Application: rate limited, concurrent, Updater only when polling."""
    token = settings.telegram_bot_token
    assert token is not None, "only built when TELEGRAM_BOT_TOKEN is set"
    # Opt in to PTB's timedelta retry_after now: otherwise every 429 raises a deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    seconds = settings.telegram_timeout_seconds
    timeouts = {"read_timeout": seconds, "write_timeout": seconds, "connect_timeout": seconds}
    builder = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .concurrent_updates(PerChatUpdateProcessor(MAX_CONCURRENT_UPDATES))
        # aiohttp, not PTB's default httpx: ~10x the sendMessage rate on loopback (bench/).
        .request(AiohttpRequest(MAX_CONCURRENT_UPDATES // 2, pool_timeout=10, **timeouts))
        .get_updates_request(AiohttpRequest(1, pool_timeout=10))
        .rate_limiter(
            AIORateLimiter(
                overall_max_rate=settings.telegram_max_messages_per_second,
                max_retries=SEND_RETRIES,
            )
        )
    )
    if settings.public_base_url:
        builder = builder.updater(None)
    return builder.build()


@dataclass
class TelegramHandlers:
    """The update handlers: each translates one kind of update into a core event."""

    chat: ChatService
    contacts: Contacts
    messenger: Messenger
    stats_of: StatsReader
    admins: frozenset[int]
    clock: Callable[[], datetime]
    audit: AuditLog | None = None
    extra: tuple[BaseHandler[Any, Any, Any], ...] = ()  # e.g. /promo, before the catch-alls

    def register(self, application: BotApplication, *, deduped: bool = False) -> None:
        """Add the handlers; the duplicate filter runs first, in its own group. ``deduped``: the
        updates come from the inbox, which dropped repeats already."""
        first = self.with_chat if deduped else self.first_delivery
        application.add_handler(TypeHandler(Update, first), group=-1)
        for handler in self.extra:
            application.add_handler(handler)
        application.add_handler(CommandHandler("stats", self.stats))
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_handler(MessageHandler(filters.TEXT, self.text))
        application.add_handler(MessageHandler(filters.CONTACT, self.contact))
        application.add_handler(MessageHandler(~filters.TEXT, self.other))
        application.add_error_handler(self.error)

    async def with_chat(self, update: Update, context: Context) -> None:
        """Stop an update without a chat (nothing to answer to) before any handler sees it, and
        one from a group or channel, answered once with the way to a private chat."""
        if chat_key(update) is None:
            await _answer(update.callback_query)
            raise ApplicationHandlerStop
        if not private(update):
            await _answer(update.callback_query)
            await _point_to_private(update, context)
            raise ApplicationHandlerStop

    async def first_delivery(self, update: Update, context: Context) -> None:
        """Stop a repeated update_id (or one without a chat) before any handler sees it."""
        await self.with_chat(update, context)
        key = chat_key(update)
        assert key is not None, "with_chat stopped it"
        if not await self.contacts.first_delivery(key, str(update.update_id), at=self.clock()):
            logger.info("update %s repeated for %s: ignored", update.update_id, mask_chat(key))
            await _answer(update.callback_query)  # the button's spinner stops all the same
            raise ApplicationHandlerStop

    async def text(self, update: Update, _: Context) -> None:
        """Forward a Telegram text message (commands included) to the conversation core."""
        message = update.effective_message
        await self._handle(update, Text((message.text if message else None) or ""))

    async def contact(self, update: Update, _: Context) -> None:
        """Forward a shared contact's phone number ("Usar mi número") as if it were typed."""
        message = update.effective_message
        shared = message.contact if message else None
        await self._handle(update, Text(shared.phone_number if shared else ""))

    async def other(self, update: Update, _: Context) -> None:
        """Forward a photo, sticker or other non-text message as empty text: the core re-asks."""
        await self._handle(update, Text(""))

    async def button(self, update: Update, _: Context) -> None:
        """Answer the button press at once, then forward the chosen option to the core."""
        query = update.callback_query
        assert query is not None, "CallbackQueryHandler only passes callback queries"
        await _answer(query)
        await self._handle(update, choice_of(query.data or ""))

    async def stats(self, update: Update, _: Context) -> None:
        """Show today's order figures to an admin; politely refuse anyone else."""
        key, user = chat_key(update), update.effective_user
        assert key is not None, "first_delivery stops updates without a chat"
        allowed = user is not None and user.id in self.admins
        if self.audit:  # who, what, when: granted or refused
            actor = f"telegram:{user.id if user else '?'}"
            await self.audit.record(actor=actor, action="stats", allowed=allowed, at=self.clock())
        if not allowed:
            who = mask_chat(ChatKey(Channel.TELEGRAM, str(user.id if user else "")))
            logger.warning("refused /stats from user %s", who)
            await self.messenger.send(key, Reply(NOT_ADMIN))
            return
        start = datetime.combine(self.clock().astimezone(LIMA).date(), time(0), LIMA)
        stats = await self.stats_of(start=start, end=start + timedelta(days=1))
        await self.messenger.send(key, Reply(stats_text(start, stats)))

    async def error(self, update: object, context: Context) -> None:
        """Log an update that failed; the update loop carries on with the next one."""
        key = chat_key(update)
        where = mask_chat(key) if key else "no chat"
        logger.error("telegram update failed (%s)", where, exc_info=context.error)

    async def _handle(self, update: Update, event: Event) -> None:
        key = chat_key(update)
        assert key is not None, "first_delivery stops updates without a chat"
        await self.chat.handle(key, event)  # replies that cannot go now stay in the outbox


def private(update: Update) -> bool:
    """True in a one-to-one chat with the bot: the only place personal data is asked."""
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


async def _point_to_private(update: Update, context: Context) -> None:
    """Answer a group or channel once, in place, with a link to the bot's private chat."""
    chat = update.effective_chat
    assert chat is not None, "with_chat stopped updates without a chat"
    link = f"https://t.me/{context.bot.username}"
    try:
        await context.bot.send_message(chat.id, PRIVATE_ONLY.format(link=link))
    except TelegramError as error:
        logger.warning("could not point a %s chat to the private one: %s", chat.type, error)


def choice_of(data: str) -> Event:
    """A pressed button's event: its option id, or its position typed as a number."""
    if data.startswith(POSITION_PREFIX):
        return Text(data.removeprefix(POSITION_PREFIX))
    return Choice(data)


async def _answer(query: CallbackQuery | None) -> None:
    """Stop the button's spinner; an answer that comes too late is not worth failing over."""
    if query is None:
        return
    try:
        await query.answer()
    except TelegramError as error:
        logger.warning("could not answer a button press: %s", error)


def stats_text(day_start: datetime, stats: OrderStats) -> str:
    """Today's figures for the operators, in Spanish."""
    return (
        f"📊 Hoy {day_start:%d/%m/%Y} (hora de Lima)\n"
        f"Pedidos: {stats.orders}\n"
        f"Completados: {stats.completed}\n"
        f"Ventas: {soles(stats.sales_cents)}\n"
        f"Fallidos: {stats.failures}\n"
        f"Pendientes ahora: {stats.pending}"
    )


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


class PendingUpdates(Protocol):
    async def add(self, key: ChatKey, update_id: int, body: str, *, at: datetime) -> bool: ...
    async def take(self, key: ChatKey) -> tuple[str | None, bool]: ...
    async def chats(self) -> list[ChatKey]: ...


@dataclass
class UpdateInbox:
    """Webhook updates go to the database before Telegram gets its 200; then the replica that
    holds the chat's lock handles the chat's kept updates by update_id, wherever each arrived.

    So a chat's order holds across replicas, and an accepted update survives a crash (kept
    updates are taken up again at start-up).
    """

    application: BotApplication = field(repr=False)  # PTB's repr of it prints the bot token
    pending: PendingUpdates
    locks: ChatLocks
    clock: Callable[[], datetime]
    # The updates this replica kept, as the webhook parsed them, until its drain takes them:
    # parsing each one again there was about 6% of an update's instructions (bench/). Bounded,
    # because another replica may take an update instead.
    _parsed: dict[int, Update] = field(default_factory=dict, init=False)

    async def accept(self, update: Update, body: str) -> None:
        """Keep the update, then handle its chat's updates in the background."""
        key = chat_key(update)
        # Nothing to order; a group or channel, where nothing is kept; or a card number typed by
        # mistake, which must never reach the disk (the handlers' guard drops it and warns):
        # straight to the handlers.
        if key is None or not private(update) or carries_card(update):
            await self.application.update_queue.put(update)
        elif await self.pending.add(key, update.update_id, body, at=self.clock()):
            if len(self._parsed) >= PARSED_KEPT:
                del self._parsed[next(iter(self._parsed))]  # the oldest
            self._parsed[update.update_id] = update
            self.application.create_task(self.drain(key), update=update)
        else:
            logger.info("update %s repeated for %s: ignored", update.update_id, mask_chat(key))
            await _answer(update.callback_query)  # the button's spinner stops all the same

    async def drain(self, key: ChatKey) -> None:
        """Handle the chat's kept updates, oldest first, while holding the chat."""
        async with self.locks.hold(key):
            more = True
            while more:
                body, more = await self.pending.take(key)
                if body is None:  # another drain took it first
                    return
                data = json.loads(body)
                update = self._parsed.pop(data["update_id"], None)
                if update is None:  # kept by another replica, or before a restart
                    update = Update.de_json(data, self.application.bot)
                await self.application.process_update(update)

    async def resume(self) -> None:
        """Take up the updates a crashed or stopped replica left kept."""
        for key in await self.pending.chats():
            self.application.create_task(self.drain(key))


def carries_card(update: Update) -> bool:
    """True if what the customer typed, captioned or pressed holds a card number."""
    message, query = update.effective_message, update.callback_query
    typed = (message.text, message.caption) if message else ()
    return any(has_card_number(text) for text in (*typed, query.data if query else None) if text)


def telegram_webhook(inbox: UpdateInbox, secret: str) -> Callable[[Request], Awaitable[Response]]:
    """Build the route Telegram posts updates to."""

    async def endpoint(request: Request) -> Response:
        """Check the secret header in constant time, keep the update and answer at once."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning("telegram webhook with a missing or wrong secret token")
            return Response(status_code=403)
        try:
            body = (await request.body()).decode()
            data = json.loads(body)
            # A JSON body that is not an object, or an object of the wrong shape, is not an update.
            bot = inbox.application.bot
            update = Update.de_json(data, bot) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            update = None
        if update is None:
            return Response(status_code=400)
        await inbox.accept(update, body)
        return Response()

    return endpoint


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
