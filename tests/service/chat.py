"""A customer driving the real bot through its chat service, as a channel would."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.app import Services
from conversations.machine import Choice, Text
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from tests.fakes import RecordingMessenger

NEW_CUSTOMER_TO_SUMMARY = (
    "hola", "Acepto", "+51 987-654-321", "María  Quispe", "DNI", "45678912",
    "Recarga de saldo", "S/ 10",
)  # fmt: skip
TEST_CARD = "4242 4242 4242 4242"


@dataclass
class Customer:
    services: Services
    messenger: RecordingMessenger
    key: ChatKey = field(default_factory=lambda: ChatKey(Channel.TERMINAL, "chat-1"))

    async def say(self, *texts: str) -> list[Reply]:
        """Send each text in turn; return the replies they produced."""
        before = len(self.messenger.sent[self.key])
        for text in texts:
            await self.services.chat.handle(self.key, Text(text))
        return self.messenger.sent[self.key][before:]

    async def press(self, option_id: str) -> list[Reply]:
        before = len(self.messenger.sent[self.key])
        await self.services.chat.handle(self.key, Choice(option_id))
        return self.messenger.sent[self.key][before:]

    def last_link(self) -> str:
        links = [r.link.url for r in self.messenger.sent[self.key] if r.link]
        assert links, "no payment link was sent"
        return links[-1]

    async def pay(self, card: str = TEST_CARD) -> str:
        """Pay the last link on the sandbox page's gateway: its webhook pushes the order on."""
        session_id = self.last_link().rsplit("/", 1)[-1]
        outcome = await self.services.payments.pay(
            session_id, number=card, expiry="12/30", cvc="123", name="MARIA QUISPE"
        )
        return str(outcome)

    def texts(self) -> list[str]:
        return self.messenger.texts(self.key)
