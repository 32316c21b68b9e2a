"""WhatsApp replies through Twilio's Messages API, with the twilio Client it is given.

Rendering: options become a numbered list the customer answers with the number or the words (the
core's ``resolve`` reads both); the payment link goes on its own line; bodies longer than Twilio's
1,600 characters are split at line breaks. Whether a reply may go at all (24-hour window, opt-out)
is decided by ``conversations.delivery``; this module only carries it out.

Twilio errors are translated here: 21610 (the customer blocked us with STOP) marks them opted out
and unreachable (nothing more is sent until they write), 63016 (outside the window) falls back to
the template or NotDeliverableNow, anything else is DeliveryFailed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import ClientError
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from conversations.delivery import Route, route, window_closed
from conversations.errors import DeliveryFailed, NotDeliverableNow
from conversations.masking import mask_chat
from conversations.messages import Reply
from conversations.model import ChatKey
from conversations.ports import Contacts

logger = logging.getLogger(__name__)

MAX_BODY = 1600
OPTED_OUT = 21610
OUTSIDE_WINDOW = 63016


@dataclass(frozen=True)
class Templates:
    """Approved Content API templates (``HX…`` SIDs); None: not configured."""

    notification: str | None = None  # one variable {{1}}: the notice text


def render(reply: Reply) -> str:
    """The reply as one WhatsApp text: text, numbered options, then the link on its own line."""
    parts = [reply.text]
    if reply.options:
        parts.append("\n".join(f"{n}. {o.label}" for n, o in enumerate(reply.options, 1)))
    if reply.link:
        parts.append(f"{reply.link.label}:\n{reply.link.url}")
    return "\n\n".join(parts)


def split(body: str, limit: int = MAX_BODY) -> list[str]:
    """Cut ``body`` into pieces of at most ``limit`` characters, at line breaks when possible."""
    pieces: list[str] = []
    current = ""
    for line in body.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line) > limit:
            pieces.append(line[:limit])
            line = line[limit:]
        current = line
    return [*pieces, current] if current or not pieces else pieces


class TwilioMessenger:
    """A Messenger for WhatsApp chats (chat id: the customer's E.164 number)."""

    def __init__(
        self,
        client: Client,
        *,
        sender: str,
        contacts: Contacts,
        clock: Callable[[], datetime],
        templates: Templates = Templates(),
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._sender = sender
        self._contacts = contacts
        self._clock = clock
        self._templates = templates
        self._timeout = timeout  # twilio's async client sets none: a hung call would hold the chat

    async def send(self, key: ChatKey, reply: Reply) -> None:
        """Send the reply now, as a template, or not at all, as ``conversations.delivery`` says."""
        contact = await self._contacts.contact(key)
        has_template = self._templates.notification is not None
        try:
            await self._carry_out(
                key, reply, route(contact, reply, now=self._clock(), has_template=has_template)
            )
        except _OutsideWindow:  # Twilio's window closed before our record of it
            await self._carry_out(key, reply, window_closed(reply, has_template=has_template))

    async def _carry_out(self, key: ChatKey, reply: Reply, decision: Route) -> None:
        match decision:
            case Route.FREE_FORM:
                for body in split(render(reply)):
                    await self._create(key, body=body)
            case Route.TEMPLATE:
                await self._template(key, reply)
            case Route.LATER:
                raise NotDeliverableNow("outside the 24-hour window, or the customer blocked us")
            case Route.DROP:
                logger.info("non-essential message to %s not sent", mask_chat(key))

    async def _template(self, key: ChatKey, reply: Reply) -> None:
        variables = json.dumps({"1": render(reply)[:MAX_BODY]}, ensure_ascii=False)
        try:
            await self._create(
                key, content_sid=self._templates.notification, content_variables=variables
            )
        except _OutsideWindow:
            raise NotDeliverableNow("Twilio 63016 on a template") from None

    async def _create(self, key: ChatKey, **content: str | None) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._client.messages.create_async(
                    to=f"whatsapp:{key.chat_id}", from_=self._sender, **content
                )
        except TwilioRestException as error:
            raise await self._refused(key, error) from None
        except (ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"Twilio unreachable: {type(error).__name__}") from error
        logger.info("whatsapp message %s queued for %s", message.sid, mask_chat(key))

    async def _refused(self, key: ChatKey, error: TwilioRestException) -> Exception:
        """The core error for a refusal, after recording what it says about the customer."""
        if error.code == OPTED_OUT:
            logger.warning("%s blocked us (Twilio 21610): opted out", mask_chat(key))
            await self._contacts.mark(key, at=self._clock(), opted_out=True, unreachable=True)
            return NotDeliverableNow("Twilio 21610: the customer blocked us")
        if error.code == OUTSIDE_WINDOW:
            return _OutsideWindow()
        return DeliveryFailed(f"Twilio refused the message: {error.code} ({error.status})")


class _OutsideWindow(Exception):
    """Twilio answered 63016; turned into a template or NotDeliverableNow in this module."""
