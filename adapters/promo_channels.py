"""Promo senders per channel: one message out, its outcome back (``conversations.broadcast``).

The chat messengers return nothing and hide what happened; a campaign must log every recipient's
outcome, so these senders share the messengers' rules instead of their ``send``: the same contact
flags (blocked, opted out), the same window rule (``conversations.delivery.in_window``), the same
marks on a refusal (Telegram 403 → unreachable; Twilio 21610 → opted out and unreachable).

A 429 raises ``RetryLater`` with the channel's wait; the broadcaster paces and retries. A timeout
or a broken connection after the request left is ``UNKNOWN``: the message may have arrived, and
a promo is never sent twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import ClientConnectorError, ClientError
from telegram import Bot
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from conversations.broadcast import Promo, RecipientState, RetryLater
from conversations.delivery import in_window
from conversations.masking import mask_chat
from conversations.model import ChatKey
from conversations.ports import Contacts

logger = logging.getLogger(__name__)

S = RecipientState
TWILIO_TOO_MANY = 20429
TWILIO_OPTED_OUT = 21610
TWILIO_BLOCKED = 63014
TWILIO_OUTSIDE_WINDOW = 63016
TWILIO_RATE = 63018  # WhatsApp's own rate limit for the sender
DEFAULT_WAIT = 1.0  # seconds, when a 429 does not say how long


class TelegramPromos:
    """Send promos with a PTB ``Bot`` that has no rate limiter of its own: 429s come back here."""

    def __init__(self, bot: Bot, contacts: Contacts, clock: Callable[[], datetime]) -> None:
        self._bot, self._contacts, self._clock = bot, contacts, clock

    async def deliver(self, key: ChatKey, promo: Promo) -> RecipientState:
        """Send the text (or the image with the text as caption) once.

        Blocked chats were left out when the row was claimed, a moment ago: no read here.
        """
        try:
            await self._send(int(key.chat_id), promo)
        except RetryAfter as error:
            raise RetryLater(_seconds(error.retry_after)) from None
        except Forbidden:
            await self._contacts.mark(key, unreachable=True, at=self._clock())
            return S.BLOCKED
        except BadRequest as error:
            logger.warning("promo to %s refused: %s", mask_chat(key), error.message)
            return S.FAILED
        except (TimedOut, NetworkError):
            return S.UNKNOWN
        return S.SENT

    async def _send(self, chat_id: int, promo: Promo) -> None:
        if promo.image_url:
            caption = promo.text[: MessageLimit.CAPTION_LENGTH]
            await self._bot.send_photo(chat_id, promo.image_url, caption=caption)
        else:
            await self._bot.send_message(chat_id, promo.text[: MessageLimit.MAX_TEXT_LENGTH])


class WhatsAppPromos:
    """Send promos through Twilio: free-form inside the 24-hour window, else the template."""

    def __init__(
        self,
        client: Client,
        *,
        sender: str,
        contacts: Contacts,
        clock: Callable[[], datetime],
        timeout: float = 10.0,
    ) -> None:
        self._client, self._sender = client, sender
        self._contacts, self._clock, self._timeout = contacts, clock, timeout

    async def deliver(self, key: ChatKey, promo: Promo) -> RecipientState:
        """Send once, as the window allows; no template outside it means SKIPPED."""
        contact = await self._contacts.contact(key)
        if contact.opted_out:
            return S.OPTED_OUT
        if contact.unreachable:
            return S.BLOCKED
        content = _content(promo, inside=in_window(contact, self._clock()))
        if content is None:
            return S.SKIPPED
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.messages.create_async(
                    to=f"whatsapp:{key.chat_id}", from_=self._sender, **content
                )
        except TwilioRestException as error:
            return await self._refused(key, error)
        except ClientConnectorError:
            return S.FAILED  # never connected: nothing left
        except (ClientError, TimeoutError):
            return S.UNKNOWN
        return S.SENT

    async def _refused(self, key: ChatKey, error: TwilioRestException) -> RecipientState:
        if error.status == 429 or error.code in (TWILIO_TOO_MANY, TWILIO_RATE):
            raise RetryLater(DEFAULT_WAIT) from None
        if error.code == TWILIO_OPTED_OUT:
            await self._contacts.mark(key, at=self._clock(), opted_out=True, unreachable=True)
            return S.OPTED_OUT
        if error.code == TWILIO_BLOCKED:
            return S.BLOCKED
        if error.code == TWILIO_OUTSIDE_WINDOW:
            return S.SKIPPED  # Twilio's window closed before our record of it
        logger.warning("promo to %s refused: Twilio %s", mask_chat(key), error.code)
        return S.FAILED


def _content(promo: Promo, *, inside: bool) -> dict[str, str] | None:
    """Twilio's message fields: a body (and image) in the window, the template outside it."""
    if inside:
        fields = {"body": promo.text[:1600]}
        return fields | {"media_url": promo.image_url} if promo.image_url else fields
    if promo.template_sid is None:
        return None
    variables = promo.template_vars or json.dumps({})
    return {"content_sid": promo.template_sid, "content_variables": variables}


def _seconds(wait: int | timedelta) -> float:
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
