"""The WhatsApp sender under load: many chats at once, a slow vendor answering out of order."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import SecretStr

from bot.settings import Settings
from bot.whatsapp import whatsapp_messenger
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Contact
from tests.fakes import MovableClock
from tests.slow_twilio import SlowTwilio, serve_slow
from tests.whatsapp.conftest import ACCOUNT_SID
from tests.whatsapp.phone import AUTH_TOKEN, SENDER

CHATS = 200
SENDS = 10_000


class WritingContacts:
    """Every customer wrote a minute ago: the window is open, nobody opted out."""

    def __init__(self, clock: MovableClock) -> None:
        self._clock = clock

    async def first_delivery(self, key: ChatKey, message_id: str, *, at: datetime) -> bool:
        return True

    async def contact(self, key: ChatKey) -> Contact:
        return Contact(last_inbound_at=self._clock.now)

    async def mark(self, key: ChatKey, *, at: datetime, **flags: bool | None) -> None:
        raise AssertionError("nobody is marked under load")


async def test_ten_thousand_sends_from_two_hundred_chats_lose_nothing_and_repeat_nothing(
    settings: Settings, clock: MovableClock
) -> None:
    twilio = SlowTwilio(ACCOUNT_SID, AUTH_TOKEN)
    async with serve_slow(twilio) as url:
        configured = settings.model_copy(
            update={
                "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": SecretStr(AUTH_TOKEN),
                "twilio_whatsapp_from": SENDER, "twilio_api_base_url": url,
            }
        )  # fmt: skip
        messenger = whatsapp_messenger(configured, contacts=WritingContacts(clock), clock=clock)
        assert messenger is not None

        async def chat(n: int) -> None:
            """One chat's replies, one after the other, as the per-chat lock sends them."""
            key = ChatKey(Channel.WHATSAPP, f"+5198{n:07d}")
            for turn in range(SENDS // CHATS):
                await messenger.send(key, Reply(f"{n}/{turn}"), answering=True)

        try:
            outcomes = await asyncio.gather(
                *(chat(n) for n in range(CHATS)), return_exceptions=True
            )
        finally:
            await messenger.close()

    assert [o for o in outcomes if o is not None] == []  # no chat lost a send
    assert len(twilio.bodies) == SENDS and set(twilio.bodies.values()) == {1}  # none twice
    assert twilio.answered != twilio.arrived  # the stand-in did answer out of order
