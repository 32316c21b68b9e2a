"""A WhatsApp customer as Twilio carries them: signed posts in, messages counted at the fake."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import httpx
from twilio.request_validator import RequestValidator

from conversations.model import Channel, ChatKey
from tests.fake_twilio import FakeTwilio

PUBLIC_URL = "https://bot.test/whatsapp/webhook"  # PUBLIC_BASE_URL + path, as Twilio calls it
SEEN_BY_APP = "http://127.0.0.1:8000"  # what the app sees behind the proxy
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
SENDER = "whatsapp:+14155238886"
_SIDS = itertools.count(1)


def message_sid() -> str:
    return f"SM{next(_SIDS):032x}"


def sign(params: dict[str, str], url: str = PUBLIC_URL, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@dataclass
class Phone:
    """One WhatsApp user writing to the bot."""

    http: httpx.AsyncClient
    twilio: FakeTwilio
    number: str = "+51911222333"
    sids: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"whatsapp:{self.number}"

    @property
    def key(self) -> ChatKey:
        return ChatKey(Channel.WHATSAPP, self.number)

    def form(self, body: str, sid: str | None = None) -> dict[str, str]:
        """The fields Twilio posts for an inbound WhatsApp text."""
        sid = sid or message_sid()
        return {
            "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": "María", "MessageType": "text",
            "SmsSid": sid, "WaId": self.number.removeprefix("+"), "SmsStatus": "received",
            "Body": body, "To": SENDER, "NumSegments": "1", "ReferralNumMedia": "0",
            "MessageSid": sid, "AccountSid": self.twilio.account_sid, "From": self.address,
            "ApiVersion": "2010-04-01",
        }  # fmt: skip

    async def post(self, params: dict[str, str], signature: str | None = None) -> httpx.Response:
        """Post a webhook, signed for the public URL unless a signature is given."""
        headers = {"X-Twilio-Signature": sign(params) if signature is None else signature}
        return await self.http.post("/whatsapp/webhook", data=params, headers=headers)

    def press(self, payload: str, title: str) -> dict[str, str]:
        """The fields Twilio posts for a tapped button or list item: its title as Body, its id."""
        tapped = {"MessageType": "button", "ButtonText": title, "ButtonPayload": payload}
        return {**self.form(title), **tapped}

    async def send(self, *forms: dict[str, str]) -> list[dict[str, str]]:
        """Post each message (Twilio sees it first); return the messages the bot sent back."""
        before = len(self.twilio.to(self.address))
        for form in forms:
            self.twilio.inbound(self.address)
            response = await self.post(form)
            assert response.status_code == 200, response.text
        return self.twilio.to(self.address)[before:]

    async def say(self, *texts: str) -> list[str]:
        """Write each text; return the bodies the bot sent back."""
        return [m.get("Body", "") for m in await self.send(*map(self.form, texts))]

    def received(self) -> list[str]:
        return self.twilio.bodies(self.address)

    def last_link(self) -> str:
        links = re.findall(r"https://bot\.test/\S+", "\n".join(self.received()))
        assert links, "no payment link was sent"
        return links[-1]
