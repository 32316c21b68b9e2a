"""The Telegram update handlers: each translates one kind of update into a core event.

Handlers only turn updates into core events (``Text``, ``Choice``) and hand them to
``ChatService.handle``; there is no ``ConversationHandler`` because the flow and its state live
in ``conversations/`` and the database, shared with the other channels and the payment webhooks.
Telegram repeats deliveries, so every update first passes ``first_delivery``, which records its
``update_id`` and drops a repeat (still answering a repeated button press, so its spinner stops).
Personal data is asked only in private chats: a group or channel is answered once with the way
to a private chat, and nothing of it is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from telegram import CallbackQuery, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram_messenger import POSITION_PREFIX
from conversations.catalog import soles
from conversations.machine import Choice, Event, Text
from conversations.masking import mask_chat
from conversations.messages import LIMA, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Contacts, Messenger
from conversations.service import ChatService, Delivery

if TYPE_CHECKING:
    from storage.orders import OrderStats

logger = logging.getLogger(__name__)

# Ours is built with PTB's default context, bot data and job queue types; none is used as typed.
BotApplication = Application[Any, Any, Any, Any, Any, Any]
NOT_ADMIN = "Lo siento, ese comando es solo para administradores."
PRIVATE_ONLY = (
    "Las recargas se hacen por chat privado, para cuidar tus datos. Escríbeme aquí: {link}"
)

Context = ContextTypes.DEFAULT_TYPE
# Called once the update's chat is saved: the webhook handling it in its request answers then.
STORED: ContextVar[Callable[[], None]] = ContextVar("stored", default=lambda: None)
StatsReader = Callable[..., Awaitable["OrderStats"]]


class AuditLog(Protocol):
    async def record(
        self, *, actor: str, action: str, allowed: bool, at: datetime, target: str | None = None
    ) -> None: ...


def chat_key(update: object) -> ChatKey | None:
    """The conversation an update belongs to, if it has a chat."""
    chat = update.effective_chat if isinstance(update, Update) else None
    return ChatKey(Channel.TELEGRAM, str(chat.id)) if chat else None


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
            await answer_button(update.callback_query)
            raise ApplicationHandlerStop
        if not private(update):
            await answer_button(update.callback_query)
            await _point_to_private(update, context)
            raise ApplicationHandlerStop

    async def first_delivery(self, update: Update, context: Context) -> None:
        """Stop a repeated update_id (or one without a chat) before any handler sees it."""
        await self.with_chat(update, context)
        key = chat_key(update)
        assert key is not None, "with_chat stopped it"
        if not await self.contacts.first_delivery(key, str(update.update_id), at=self.clock()):
            logger.info("update %s repeated for %s: ignored", update.update_id, mask_chat(key))
            await answer_button(update.callback_query)  # the button's spinner stops all the same
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
        await answer_button(query)
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
        # Replies that cannot go now stay in the outbox; the update is recorded as delivered with
        # the chat's save (the webhook, handling it in its request, checked it was not before).
        delivery = Delivery(str(update.update_id), STORED.get())
        await self.chat.handle(key, event, delivery=delivery)


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


async def answer_button(query: CallbackQuery | None) -> None:
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
