"""Test doubles that record what crossed a port, and a clock tests can move."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from conversations.messages import Reply
from conversations.model import ChatKey
from conversations.ports import Contact


@dataclass
class RecordingMessenger:
    """A Messenger that keeps every reply per chat."""

    sent: dict[ChatKey, list[Reply]] = field(default_factory=lambda: defaultdict(list))

    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> None:
        self.sent[key].append(reply)

    def texts(self, key: ChatKey) -> list[str]:
        return [reply.text for reply in self.sent[key]]


@dataclass
class MovableClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 25, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class CapturedWebhooks:
    """Stands where the sandbox gateway posts webhooks: keeps them for the test to deliver."""

    posted: list[tuple[bytes, str]] = field(default_factory=list)

    async def __call__(self, payload: bytes, signature: str) -> int:
        self.posted.append((payload, signature))
        return 200
