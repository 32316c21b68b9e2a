"""WhatsApp replies through Twilio's Messages API, with the ``TwilioMessages`` client it is given.

Rendering: options become a numbered list the customer answers with the number or the words (the
core's ``resolve`` reads both); the payment link goes on its own line; bodies longer than Twilio's
1,600 characters are split at line breaks. Whether a reply may go at all (24-hour window, opt-out)
is decided by ``conversations.delivery``; this module only carries it out.

Within the window, a reply may go as interactive content instead (``interactive``): 1-3 options as
a twilio/quick-reply, 4-10 as a twilio/list-picker, a link as a twilio/call-to-action URL button.
A template holds a fixed number of buttons or items, so there is one per count. Variables: {{1}}
is the body; option n (from 1) has its title in {{2n}} and its id in {{2n+1}}; the link button's
URL is the template's fixed start plus {{2}}. Anything over WhatsApp's limits, or a count with no
template, goes as text; so does content Twilio refuses (a mistyped SID must not silence the bot).

Twilio errors are translated here, whether answered at once or reported later by a status
callback (``after_send``): 21610 (the customer blocked us with STOP) marks them opted out and
unreachable (nothing more is sent until they write), 63024 (not a WhatsApp recipient) marks them
unreachable, 63049 (WhatsApp chose not to deliver) waits for them, 63016 (outside the window)
falls back to the template or NotDeliverableNow, 429 / 20429 is Throttled, another 4xx Refused,
anything else DeliveryFailed (``conversations.delivery.fate`` says what becomes of each).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import ClientError
from twilio.base.exceptions import TwilioRestException

from adapters.twilio_rest import TwilioMessages
from conversations.delivery import Refused, Route, Throttled, route, window_closed
from conversations.errors import DeliveryFailed, NotDeliverableNow
from conversations.masking import mask_chat
from conversations.messages import Link, Option, Reply
from conversations.model import ChatKey
from conversations.ports import Contact, Contacts

logger = logging.getLogger(__name__)

MAX_BODY = 1600
OPTED_OUT = 21610
OUTSIDE_WINDOW = 63016
INVALID_RECIPIENT = 63024
NOT_DELIVERED_BY_META = 63049
TOO_MANY_REQUESTS = 429
TOO_MANY_REQUESTS_CODE = 20429

INTERACTIVE_BODY = 1024  # quick-reply, list-picker and call-to-action bodies
BUTTON_TITLE = 20  # a WhatsApp reply button's title
ITEM_TITLE = 24  # a list-picker item's title
OPTION_ID = 200  # a list-picker item's id (reply buttons allow 256)
QUICK_REPLY_COUNTS = range(1, 4)  # WhatsApp allows 3 quick-reply buttons in a session
LIST_PICKER_COUNTS = range(4, 11)  # and 10 list items
NOTICE_MAX = 900  # the notice in {{1}}: WhatsApp caps a body at 1,024, template words included


@dataclass(frozen=True)
class Templates:
    """Content API templates (``HX…`` SIDs); None or no entry: not configured."""

    notification: str | None = None  # approved; {{1}}: the notice, on one line
    quick_reply: Mapping[int, str] = field(default_factory=dict)  # buttons → SID
    list_picker: Mapping[int, str] = field(default_factory=dict)  # items → SID
    call_to_action: str | None = None  # {{1}}: the text; URL button: call_to_action_url + {{2}}
    call_to_action_url: str | None = None


@dataclass(frozen=True)
class Content:
    """A reply as a content template: its SID and the values of its variables."""

    sid: str
    variables: dict[str, str]

    def json(self) -> str:
        """ContentVariables as Twilio takes them: one JSON object of strings."""
        return json.dumps(self.variables, ensure_ascii=False)


def render(reply: Reply) -> str:
    """The reply as one WhatsApp text: text, numbered options, then the link on its own line."""
    parts = [reply.text]
    if reply.options:
        parts.append(
            "\n".join(
                f"{f'{n}.' if reply.numbered else '•'} {o.label}"
                for n, o in enumerate(reply.options, 1)
            )
        )
    if reply.link:
        parts.append(f"{reply.link.label}:\n{reply.link.url}")
    return "\n\n".join(parts)


def interactive(reply: Reply, templates: Templates) -> Content | None:
    """The reply as buttons, a list or a link button, if a template fits it; None: send text."""
    if not 0 < len(reply.text) <= INTERACTIVE_BODY or (reply.options and reply.link):
        return None
    if reply.link:
        return _call_to_action(reply.text, reply.link, templates)
    count = len(reply.options)
    if count in QUICK_REPLY_COUNTS:
        return _choices(reply, templates.quick_reply.get(count), BUTTON_TITLE)
    return _choices(reply, templates.list_picker.get(count), ITEM_TITLE)


def _choices(reply: Reply, sid: str | None, title_limit: int) -> Content | None:
    """Body in {{1}}, then each option's title and id: {{2}} and {{3}}, {{4}} and {{5}}…"""
    if sid is None or not all(_fits(option, title_limit) for option in reply.options):
        return None
    variables = {"1": reply.text}
    for n, option in enumerate(reply.options, 1):
        variables[str(2 * n)], variables[str(2 * n + 1)] = option.label, option.id
    return Content(sid, variables)


def _fits(option: Option, title_limit: int) -> bool:
    """False for a title or id WhatsApp would refuse: the whole reply then goes as text."""
    return 0 < len(option.label) <= title_limit and 0 < len(option.id) <= OPTION_ID


def _call_to_action(text: str, link: Link, templates: Templates) -> Content | None:
    """Body in {{1}}; {{2}} completes the URL button's fixed start, so other links go as text."""
    sid, start = templates.call_to_action, templates.call_to_action_url
    if sid is None or not start or not link.url.startswith(start) or link.url == start:
        return None
    return Content(sid, {"1": text, "2": link.url.removeprefix(start)})


def one_line(text: str, limit: int = NOTICE_MAX) -> str:
    """A template variable WhatsApp accepts: no newlines, tabs or runs of spaces, and capped."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
        client: TwilioMessages,
        *,
        sender: str,
        status_callback: str | None = None,
        contacts: Contacts,
        clock: Callable[[], datetime],
        templates: Templates = Templates(),
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._sender = sender
        self._status_callback = status_callback  # where Twilio reports delivery, if anywhere
        self._contacts = contacts
        self._clock = clock
        self._templates = templates
        self._timeout = timeout  # a hung call would hold the chat

    async def close(self) -> None:
        await self._client.close()

    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> str | None:
        """Send the reply now, as a template, or not at all, as ``conversations.delivery`` says;
        return the MessageSid of the last message sent.

        The contact (read here unless given) counts even when ``answering``: its opt-out and
        window decide the route."""
        contact = contact or await self._contacts.contact(key)
        try:
            decision = route(contact, reply, now=self._clock(), has_template=self._has_template)
            return await self._carry_out(key, reply, decision)
        except _OutsideWindow:  # Twilio's window closed before our record of it
            return await self.outside_window(key, reply)

    async def outside_window(self, key: ChatKey, reply: Reply) -> str | None:
        """Send the reply as WhatsApp allows outside the window (Twilio said 63016)."""
        decision = window_closed(reply, has_template=self._has_template)
        return await self._carry_out(key, reply, decision)

    async def after_send(self, key: ChatKey, reply: Reply, code: int) -> str | None:
        """Take the route an immediate refusal with ``code`` takes, for a message Twilio took
        and WhatsApp then refused (a status callback): the template, or the core's error."""
        error = await self._refused(key, TwilioRestException(400, "", code=code, method="POST"))
        if isinstance(error, _OutsideWindow):
            return await self.outside_window(key, reply)
        raise error

    @property
    def _has_template(self) -> bool:
        return self._templates.notification is not None

    async def _carry_out(self, key: ChatKey, reply: Reply, decision: Route) -> str | None:
        match decision:
            case Route.FREE_FORM:
                return await self._free_form(key, reply)
            case Route.TEMPLATE:
                return await self._template(key, reply)
            case Route.LATER:
                raise NotDeliverableNow("outside the 24-hour window, or the customer blocked us")
        logger.info("non-essential message to %s not sent", mask_chat(key))
        return None

    async def _free_form(self, key: ChatKey, reply: Reply) -> str:
        """Interactive content when a template fits, else text; text too if Twilio refuses it."""
        content = interactive(reply, self._templates)
        if content is not None:
            try:
                return await self._create(
                    key, ContentSid=content.sid, ContentVariables=content.json()
                )
            except Refused as error:
                logger.warning("content %s refused, sent as text: %s", content.sid, error)
        sids = [await self._create(key, Body=body) for body in split(render(reply))]
        return sids[-1]

    async def _template(self, key: ChatKey, reply: Reply) -> str:
        variables = json.dumps({"1": one_line(render(reply))}, ensure_ascii=False)
        try:
            return await self._create(
                key, ContentSid=self._templates.notification or "", ContentVariables=variables
            )
        except _OutsideWindow:
            raise NotDeliverableNow("Twilio 63016 on a template") from None

    async def _create(self, key: ChatKey, **content: str) -> str:
        fields = {"To": f"whatsapp:{key.chat_id}", "From": self._sender, **content}
        if self._status_callback:
            fields["StatusCallback"] = self._status_callback
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._client.create(fields)
        except TwilioRestException as error:
            raise await self._refused(key, error) from None
        except (ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"Twilio unreachable: {type(error).__name__}") from error
        sid = str(message["sid"])
        logger.info("whatsapp message %s queued for %s", sid, mask_chat(key))
        return sid

    async def _refused(self, key: ChatKey, error: TwilioRestException) -> Exception:
        """The core error for a refusal, after recording what it says about the customer."""
        if error.code == OPTED_OUT:
            logger.warning("%s blocked us (Twilio 21610): opted out", mask_chat(key))
            await self._contacts.mark(key, at=self._clock(), opted_out=True, unreachable=True)
            return NotDeliverableNow("Twilio 21610: the customer blocked us")
        if error.code == INVALID_RECIPIENT:
            logger.warning(
                "%s is no WhatsApp recipient (Twilio 63024): unreachable", mask_chat(key)
            )
            await self._contacts.mark(key, at=self._clock(), unreachable=True)
            return NotDeliverableNow("Twilio 63024: not a WhatsApp recipient now")
        if error.code == OUTSIDE_WINDOW:
            return _OutsideWindow()
        if error.code == NOT_DELIVERED_BY_META:
            return NotDeliverableNow("Twilio 63049: WhatsApp chose not to deliver it now")
        refused = f"Twilio refused the message: {error.code} ({error.status})"
        if error.status == TOO_MANY_REQUESTS or error.code == TOO_MANY_REQUESTS_CODE:
            return Throttled(refused)
        if error.status >= 500:
            return DeliveryFailed(refused)
        return Refused(refused)


class _OutsideWindow(Exception):
    """Twilio answered 63016; turned into a template or NotDeliverableNow in this module."""
