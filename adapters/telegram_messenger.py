"""Telegram rendering of the core's replies, and Telegram's refusals translated at this border.

Options become an inline keyboard (one button per row: labels are long), the payment link a URL
button. Telegram caps a message at 4,096 characters and ``callback_data`` at 64 bytes, so long
texts are split (the keyboard rides on the last part) and an over-long option id is sent as its
position in the list, which the core resolves like a typed number.

Refusals become the core's errors, which ``conversations.delivery.fate`` sorts for the outbox:
a 403 means the customer blocked the bot, so the chat is marked unreachable and every send to it
raises ``NotDeliverableNow`` until the customer writes again (which clears the mark). Flood
control (429) is the rate limiter's job, below this class: it waits ``retry_after`` and sends
again; a 429 left after its retries raises ``Throttled`` with Telegram's ``retry_after``, a 400
(e.g. "chat not found") ``Refused``, a timeout, a 5xx or a broken connection ``DeliveryFailed``.
After a timeout the message may have arrived: a notice sent twice is better than a notice lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import ExtBot

from conversations.delivery import Refused, Throttled
from conversations.errors import DeliveryFailed, NotDeliverableNow
from conversations.masking import mask_chat
from conversations.messages import Option, Reply
from conversations.model import ChatKey
from conversations.ports import Contact, Contacts

logger = logging.getLogger(__name__)

POSITION_PREFIX = "#"  # callback_data "#3": the third option, for ids longer than 64 bytes
OWN_NUMBER = ReplyKeyboardMarkup(
    [[KeyboardButton("Usar mi número", request_contact=True)]],
    resize_keyboard=True, one_time_keyboard=True,
)  # fmt: skip
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class ReplyBot(ExtBot[Any]):
    """PTB's ``ExtBot`` (every call rate limited) with a sendMessage that keeps only the new
    message's id: ``send_message`` parses the whole Message Telegram sends back, which nothing
    here reads, about 180 µs a reply (a twentieth of an update's CPU, bench/)."""

    def __repr__(self) -> str:
        """PTB's shows the whole token; its first part, the bot's id, tells bots apart."""
        return f"{type(self).__name__}[id={self.token.split(':', 1)[0]}]"

    async def send_text(self, chat_id: int, text: str, markup: Markup | None = None) -> int:
        """Send one message; its message_id. Errors are ``send_message``'s."""
        data = {"chat_id": chat_id, "text": text, "reply_markup": markup}
        sent = await self._post("sendMessage", data)
        return int(sent["message_id"])


class TelegramMessenger:
    """A Messenger that sends through the Application's ``ReplyBot`` (rate limited)."""

    def __init__(self, bot: ReplyBot, contacts: Contacts, clock: Callable[[], datetime]) -> None:
        self._bot = bot
        self._contacts = contacts
        self._clock = clock

    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> str | None:
        """Send the reply in as many messages as it needs, or raise why it cannot go now;
        return the id of the last message."""
        if not answering and (contact or await self._contacts.contact(key)).unreachable:
            logger.info("chat %s blocked the bot: reply not sent", mask_chat(key))
            raise NotDeliverableNow("the customer blocked the bot")
        try:
            chat_id = int(key.chat_id)  # a private chat's id is its user's: above zero
            sent = [
                await self._bot.send_text(chat_id, text, markup)
                for text, markup in render(reply, private=chat_id > 0)
            ]
        except Forbidden:
            logger.warning("chat %s blocked the bot: marked unreachable", mask_chat(key))
            await self._contacts.mark(key, unreachable=True, at=self._clock())
            raise NotDeliverableNow("the customer blocked the bot") from None
        except TelegramError as error:
            logger.warning("reply to %s not sent: %r", mask_chat(key), error)
            raise _translated(error) from error
        return str(sent[-1])


def _translated(error: TelegramError) -> DeliveryFailed:
    """429 left after the rate limiter's retries, 400, or a timeout / network failure."""
    what = f"Telegram: {type(error).__name__}"
    if isinstance(error, RetryAfter):
        wait = error.retry_after
        return Throttled(what, retry_after=_seconds(wait))
    if isinstance(error, BadRequest):
        return Refused(what)
    return DeliveryFailed(what)


def _seconds(wait: timedelta | float) -> float:
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def render(reply: Reply, *, private: bool = True) -> list[tuple[str, Markup | None]]:
    """Turn a reply into (text, keyboard) messages, the keyboard on the last one.

    ``ask_contact`` becomes a one-time "Usar mi número" keyboard button, in a private chat only
    (Telegram shares the number of whoever taps it) and when no inline button is shown."""
    text = reply.text
    rows = [[InlineKeyboardButton(o.label, callback_data=callback_data(o, i))]
            for i, o in enumerate(reply.options, start=1)]  # fmt: skip
    if reply.link and _button_url_allowed(reply.link.url):
        rows.append([InlineKeyboardButton(reply.link.label, url=reply.link.url)])
    elif reply.link:
        text = f"{text}\n{reply.link.url}"  # Telegram refuses local addresses in buttons
    chunks = split_text(text)
    markup: Markup | None = InlineKeyboardMarkup(rows) if rows else None
    if markup is None and reply.ask_contact and private:
        markup = OWN_NUMBER
    return [(chunk, markup if last else None) for last, chunk in _mark_last(chunks)]


def callback_data(option: Option, position: int) -> str:
    """The option id, or its position when the id does not fit Telegram's 64 bytes."""
    if len(option.id.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA:
        return option.id
    return f"{POSITION_PREFIX}{position}"


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Cut text into parts Telegram accepts, at a line break or a space where possible."""
    parts: list[str] = []
    while _units(text) > limit:
        fit = _longest_prefix(text, limit)
        cut = max(text.rfind("\n", 0, fit + 1), text.rfind(" ", 0, fit + 1))
        cut = cut if cut > 0 else fit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n ")
    return [*parts, text]


def _units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji may count two)."""
    return len(text.encode("utf-16-le")) // 2


def _longest_prefix(text: str, limit: int) -> int:
    used = 0
    for index, char in enumerate(text):
        used += _units(char)
        if used > limit:
            return index
    return len(text)


def _mark_last(chunks: list[str]) -> list[tuple[bool, str]]:
    return [(i == len(chunks) - 1, chunk) for i, chunk in enumerate(chunks)]


def _button_url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname not in _LOCAL_HOSTS
