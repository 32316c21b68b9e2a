"""WhatsApp through Twilio: POST /whatsapp/webhook, and the messenger built from the settings.

The webhook checks X-Twilio-Signature against PUBLIC_BASE_URL + the path with every posted field,
never against the Host or X-Forwarded-* headers: behind a proxy the app sees another URL, and those
headers are whoever calls us to choose. Invalid: 403 and nothing stored. A MessageSid seen before
(Twilio retries): empty TwiML and nothing else.

Then it answers an empty ``<Response/>`` at once and handles the message after the response has
gone (a Starlette BackgroundTask): the core may look the number up and open a checkout, which can
outlast Twilio's 15-second timeout, and replies go through the REST API, not the TwiML. The
MessageSid is recorded before handling, so a crash mid-way loses that one message (the customer
writes again) rather than answering it twice.

A press on a quick-reply button or a list item carries the option id in ButtonPayload: it becomes
the core's Choice when the chat offers that option now. Without one (the list-picker's reply
fields are not documented for certain), or with one the chat does not offer (a tap on an older
message, a template whose ids are not ours), the Body, or else ButtonText, is the Text: the core
reads the item's title or its number.

BAJA / STOP and ALTA / START are settled here, at the channel's edge: they set the customer's
opt-out flag, which ``conversations.delivery`` reads, and the promo opt-in (BAJA withdraws it,
ALTA gives it, with the time).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from adapters.twilio_messenger import (
    LIST_PICKER_COUNTS,
    QUICK_REPLY_COUNTS,
    Templates,
    TwilioMessenger,
)
from adapters.twilio_rest import TwilioMessages
from bot.settings import Settings
from conversations import messages as msg
from conversations.catalog import fold
from conversations.delivery import Courier
from conversations.machine import Choice, Text
from conversations.masking import mask_chat
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Contact, Contacts
from storage.outbox import VENDOR_STATES, SqlOutbox

logger = logging.getLogger(__name__)

PATH = "/whatsapp/webhook"
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024  # a message's fields (Body up to 1,600 characters) with room to spare
STATUS_PATH = "/whatsapp/status"
FAILED = frozenset({"failed", "undelivered"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
OPT_OUT_WORDS = frozenset({"baja", "stop"})
OPT_IN_WORDS = frozenset({"alta", "start"})
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Inbound:
    key: ChatKey
    message_sid: str
    text: str
    payload: str = ""  # the option id of a pressed button or list item

    def event(self, offered: Collection[str]) -> Text | Choice:
        """A pressed option the chat offers as the core's Choice; else what was typed or shown."""
        return Choice(self.payload) if self.payload in offered else Text(self.text)


def parse(form: FormData, ours: str) -> Inbound | None:
    """The message in Twilio's form post; None if it is no customer's WhatsApp message (a status
    report carries MessageStatus; one about our own message comes From our sender, ``ours``)."""
    sender, sid = str(form.get("From", "")), str(form.get("MessageSid", ""))
    number = sender.removeprefix("whatsapp:")
    if not sid or not number or sender in (number, ours) or "MessageStatus" in form:
        return None
    # A tapped button sends its title as Body too; fall back to the button fields if it did not.
    text = form.get("Body") or form.get("ButtonText") or ""
    payload = str(form.get("ButtonPayload", "")).strip()
    return Inbound(ChatKey(Channel.WHATSAPP, number), sid, str(text), payload)


def signed(validator: RequestValidator, url: str, form: FormData, signature: str) -> bool:
    """True if Twilio signed this exact URL and every posted field (text fields only)."""
    if not all(isinstance(value, str) for _, value in form.multi_items()):
        return False
    return bool(signature) and validator.validate(url, form, signature)


async def signed_form(
    request: Request, validator: RequestValidator, url: str
) -> FormData | Response:
    """The posted form if Twilio signed it for ``url``, else the refusal (logged).

    Twilio posts signed url-encoded forms: anything else is refused before its body is read."""
    if "X-Twilio-Signature" not in request.headers:
        logger.warning("whatsapp post to %s refused: no signature", request.url.path)
        return Response(status_code=403)
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM:
        return Response(status_code=415)
    form = await request.form()
    if signed(validator, url, form, request.headers.get("X-Twilio-Signature", "")):
        return form
    logger.warning("whatsapp post to %s refused: bad signature", request.url.path)
    return Response(status_code=403)


def twiml(background: BackgroundTask | None = None) -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml", background=background)


@dataclass(frozen=True)
class Inbox:
    """What a WhatsApp message does once accepted: an opt-out keyword, or a turn of the chat."""

    contacts: Contacts
    handle: Callable[[ChatKey, Text | Choice], Awaitable[None]]
    answer: Callable[[ChatKey, Reply], Awaitable[None]]  # through the outbox
    clock: Callable[[], datetime]
    offered: Callable[[ChatKey], Awaitable[Collection[str]]]  # the option ids the chat shows now

    async def process(self, inbound: Inbound) -> None:
        """Handle one message after the response; failures are logged, never raised to Twilio."""
        try:
            if not await self._opt_keyword(inbound):
                offered = await self.offered(inbound.key) if inbound.payload else ()
                await self.handle(inbound.key, inbound.event(offered))
        except Exception:
            logger.exception(
                "whatsapp message %s from %s failed", inbound.message_sid, mask_chat(inbound.key)
            )

    async def _opt_keyword(self, inbound: Inbound) -> bool:
        word = fold(inbound.text)
        if word not in OPT_OUT_WORDS | OPT_IN_WORDS:
            return False
        out = word in OPT_OUT_WORDS
        # BAJA also withdraws the promo opt-in; ALTA is an express yes to promos.
        await self.contacts.mark(inbound.key, at=self.clock(), opted_out=out, promos=not out)
        logger.info("%s opted %s (%s)", mask_chat(inbound.key), "out" if out else "in", word)
        await self.answer(inbound.key, msg.opted_out() if out else msg.opted_in())
        return True


def whatsapp_webhook(
    *, validator: RequestValidator, url: str, inbox: Inbox, sender: str
) -> Callable[[Request], Awaitable[Response]]:
    """Build the webhook endpoint; nothing is stored or sent before the signature holds."""

    async def endpoint(request: Request) -> Response:
        form = await signed_form(request, validator, url)
        if isinstance(form, Response):
            return form
        inbound = parse(form, sender)
        at = inbox.clock()
        if inbound is None or not await inbox.contacts.first_delivery(
            inbound.key, inbound.message_sid, at=at
        ):
            return twiml()
        logger.info("whatsapp message %s from %s", inbound.message_sid, mask_chat(inbound.key))
        return twiml(BackgroundTask(inbox.process, inbound))

    return endpoint


def enabled(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)


def whatsapp_messenger(
    settings: Settings, *, contacts: Contacts, clock: Callable[[], datetime]
) -> TwilioMessenger | None:
    """The WhatsApp messenger, or None when Twilio is not configured."""
    if not (enabled(settings) and settings.twilio_auth_token and settings.twilio_whatsapp_from):
        return None
    client = TwilioMessages(
        account_sid=settings.twilio_account_sid or "",
        auth_token=settings.twilio_auth_token.get_secret_value(),
        base_url=settings.twilio_api_base_url,
    )
    return TwilioMessenger(
        client, sender=settings.twilio_whatsapp_from, status_callback=status_url(settings),
        contacts=contacts, clock=clock,
        templates=templates(settings),
    )  # fmt: skip


def templates(settings: Settings) -> Templates:
    """The content templates in the settings; a malformed one stops the start-up, named."""
    cta = settings.twilio_template_call_to_action_sid
    cta_url = settings.twilio_template_call_to_action_url_prefix
    if bool(cta) != bool(cta_url):
        raise ValueError("set TWILIO_TEMPLATE_CALL_TO_ACTION_SID and _URL_PREFIX together")
    return Templates(
        notification=settings.twilio_template_notification_sid,
        quick_reply=sids_by_count(
            settings.twilio_template_quick_reply_sids, QUICK_REPLY_COUNTS, "QUICK_REPLY_SIDS"
        ),
        list_picker=sids_by_count(
            settings.twilio_template_list_picker_sids, LIST_PICKER_COUNTS, "LIST_PICKER_SIDS"
        ),
        call_to_action=content_sid(cta, "CALL_TO_ACTION_SID") if cta else None,
        call_to_action_url=cta_url,
    )


def sids_by_count(value: str | None, counts: range, name: str) -> dict[int, str]:
    """Read "2:HX…,3:HX…": how many buttons or items each template holds, and its SID."""
    found: dict[int, str] = {}
    for pair in filter(None, (part.strip() for part in (value or "").split(","))):
        count, _, sid = pair.partition(":")
        if not count.strip().isdecimal() or int(count) not in counts:
            allowed = f"{counts.start}-{counts.stop - 1}"
            raise ValueError(f"TWILIO_TEMPLATE_{name}: {count!r} is not a count in {allowed}")
        found[int(count)] = content_sid(sid, name)
    return found


def content_sid(value: str, name: str) -> str:
    """The SID, checked at start-up: a mistyped one would quietly turn buttons into text."""
    if not CONTENT_SID.fullmatch(value.strip()):
        raise ValueError(f"TWILIO_TEMPLATE_{name}: {value!r} is not a Content SID (HX + 32 hex)")
    return value.strip()


def whatsapp_routes(
    settings: Settings, *, inbox: Inbox, reports: StatusReports | None
) -> list[Route]:
    """The webhook and status callback routes, when Twilio is configured."""
    if not (enabled(settings) and settings.twilio_auth_token):
        return []
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    sender = settings.twilio_whatsapp_from or ""
    endpoint = whatsapp_webhook(
        validator=validator, url=settings.base_url + PATH, inbox=inbox, sender=sender
    )
    routes = [Route(PATH, endpoint, methods=["POST"])]
    if reports is not None:
        status = status_callback(validator=validator, url=status_url(settings), reports=reports)
        routes.append(Route(STATUS_PATH, status, methods=["POST"]))
    return routes


def status_url(settings: Settings) -> str:
    return settings.base_url + STATUS_PATH


@dataclass(frozen=True)
class StatusReports:
    """Twilio's reports on the messages we sent: recorded; a failure takes the refusal's route.

    WhatsApp's refusals mostly arrive here, after Twilio took the message: 63016 (the window had
    closed) sends it again as the template, or keeps it for the customer's next message; 21610
    and 63024 mark the customer unreachable and keep it; see ``TwilioMessenger.after_send``."""

    outbox: SqlOutbox
    courier: Courier
    messenger: TwilioMessenger
    hold: Callable[[ChatKey], AbstractAsyncContextManager[None]]
    clock: Callable[[], datetime]

    async def record(self, sid: str, status: str, code: str) -> None:
        if status not in VENDOR_STATES:
            return  # queued, sent, accepted…: nothing to keep
        message = await self.outbox.reported(sid, status, error=code or None, at=self.clock())
        if message is None or status not in FAILED or not code.isdecimal():
            return
        logger.info("whatsapp message %s to %s %s (%s)", sid, mask_chat(message.key), status, code)
        async with self.hold(message.key):
            await self.outbox.retry(message.id, attempts=message.attempts, next_at=self.clock())

            async def again(key: ChatKey, reply: Reply, **_: bool | Contact | None) -> str | None:
                return await self.messenger.after_send(key, reply, int(code))

            await self.courier.deliver(message, send=again)


def status_callback(
    *, validator: RequestValidator, url: str, reports: StatusReports
) -> Callable[[Request], Awaitable[Response]]:
    """Build the status callback endpoint: signed as the webhook is, answered 200 and empty."""

    async def endpoint(request: Request) -> Response:
        form = await signed_form(request, validator, url)
        if isinstance(form, Response):
            return form
        sid, status = str(form.get("MessageSid", "")), str(form.get("MessageStatus", ""))
        await reports.record(sid, status, str(form.get("ErrorCode", "")))
        return Response(status_code=200)

    return endpoint
