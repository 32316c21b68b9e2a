"""The inbox handles an update in its request when the chat is free, or freed soon by the one update
handled before it here; else it keeps it for the chat's drain, which gets the update the webhook
parsed (it holds only so many of them)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from telegram import Update
from telegram.ext import Application, TypeHandler

from bot.settings import Settings
from bot.telegram_app import telegram_application
from bot.telegram_inbox import PARSED_KEPT, UpdateInbox
from conversations.model import Channel, ChatKey
from conversations.service import KeyedLocks
from storage.pending_updates import Seen
from tests.telegram.user import message_update

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CHAT = ChatKey(Channel.TELEGRAM, "3001")


@dataclass
class Kept:
    """The kept updates of one replica's database; ``others`` take theirs first."""

    bodies: deque[str] = field(default_factory=deque)
    others: bool = False
    delivered: set[int] = field(default_factory=set)

    async def add(self, key: ChatKey, update_id: int, body: str, *, at: datetime) -> bool:
        await asyncio.sleep(0)  # a round trip to the database: others run meanwhile
        self.bodies.append(body)
        return True

    async def seen(self, key: ChatKey, update_id: int) -> Seen:
        return Seen(update_id in self.delivered, self.others or bool(self.bodies))

    async def take(self, key: ChatKey) -> tuple[str | None, bool]:
        """The lowest update_id first, as the database orders them."""
        if self.others or not self.bodies:
            return None, False
        first = min(self.bodies, key=lambda body: json.loads(body)["update_id"])
        self.bodies.remove(first)
        return first, bool(self.bodies)

    async def chats(self) -> list[ChatKey]:
        return []


@pytest.fixture
async def application(telegram_settings: Settings) -> AsyncIterator[Application]:
    """The bot's PTB Application against the fake Bot API, running (as its drains need)."""
    application = telegram_application(telegram_settings)
    async with application:
        await application.start()
        yield application
        if application.running:
            await application.stop()


async def turns() -> None:
    """Let the tasks started so far run until they wait (on the chat's lock)."""
    for _ in range(20):
        await asyncio.sleep(0)


def inbox(
    application: Application, kept: Kept, *, holder_wait: float = 0.0
) -> tuple[UpdateInbox, list[Update]]:
    """An inbox over ``kept`` whose handler records the updates handled; by default an update
    finding its chat held is kept at once."""
    handled: list[Update] = []

    async def record(update: Update, _context: object) -> None:
        handled.append(update)

    application.add_handler(TypeHandler(Update, record))
    return UpdateInbox(application, kept, KeyedLocks(), lambda: NOW, holder_wait), handled


async def accept(box: UpdateInbox, chat_id: int, update_id: int) -> Update:
    data = message_update(chat_id, "hola", update_id)
    update = Update.de_json(data, box.application.bot)
    await box.accept(update, json.dumps(data))
    return update


async def test_an_update_of_a_free_chat_is_handled_in_the_request_and_nothing_is_kept(application):
    kept = Kept()
    box, handled = inbox(application, kept)

    given = await accept(box, 3001, 10)

    assert handled == [given] and not kept.bodies and box._parsed == {}


async def test_a_repeated_update_is_not_handled_again(application):
    box, handled = inbox(application, Kept(delivered={10}))

    await accept(box, 3001, 10)
    await application.stop()

    assert handled == []


async def test_an_update_behind_kept_ones_of_its_chat_is_kept_and_handled_after_them(application):
    kept = Kept()
    box, handled = inbox(application, kept)
    async with box.locks.hold(CHAT):  # the chat is busy: kept
        await accept(box, 3001, 10)
    assert kept.bodies and handled == []

    await accept(box, 3001, 11)  # the chat is free again, but 10 waits: 11 goes behind it
    await application.stop()

    assert [update.update_id for update in handled] == [10, 11]


async def test_an_update_waits_for_the_one_handled_before_it_and_is_handled_in_its_request(
    application,
):
    kept = Kept()
    box, handled = inbox(application, kept, holder_wait=60)
    async with box.locks.hold(CHAT):  # the update before it, still sending its reply
        accepting = asyncio.ensure_future(accept(box, 3001, 10))
        await turns()
        waited = not accepting.done()
    await accepting

    assert waited
    assert [update.update_id for update in handled] == [10] and not kept.bodies


async def test_an_update_behind_a_waiting_one_is_kept_and_both_are_handled_in_order(application):
    kept = Kept()
    box, handled = inbox(application, kept, holder_wait=60)
    async with box.locks.hold(CHAT):
        waiting = asyncio.ensure_future(accept(box, 3001, 10))
        await turns()
        await accept(box, 3001, 11)  # one waits already: kept at once, without waiting
        kept_first = [json.loads(body)["update_id"] for body in kept.bodies]
        waited = not waiting.done()
    await waiting  # finds 11 kept, so it is kept too; the drain takes them by update_id
    await application.stop()

    assert kept_first == [11] and waited
    assert [update.update_id for update in handled] == [10, 11]


async def test_an_update_whose_chat_is_not_freed_within_the_wait_is_kept(application):
    kept = Kept()
    box, handled = inbox(application, kept, holder_wait=0.01)
    async with box.locks.hold(CHAT):
        await accept(box, 3001, 10)
        assert kept.bodies and handled == []
    await application.stop()

    assert [update.update_id for update in handled] == [10]


async def test_the_drain_handles_the_update_the_webhook_parsed_and_then_holds_none(application):
    box, handled = inbox(application, Kept())

    async with box.locks.hold(CHAT):  # the chat is busy: kept
        given = [await accept(box, 3001, update_id) for update_id in (10, 11)]
        assert handled == []
    await application.stop()  # waits for the drains it was given

    assert [update.update_id for update in handled] == [10, 11]
    assert all(got is sent for got, sent in zip(handled, given, strict=True))
    assert box._parsed == {}


async def test_updates_another_replica_takes_are_held_at_most_parsed_kept_oldest_dropped(
    application,
):
    box, handled = inbox(application, Kept(others=True))

    for update_id in range(PARSED_KEPT + 3):
        await accept(box, 4000 + update_id % 7, update_id)
    await application.stop()

    assert handled == []
    assert len(box._parsed) == PARSED_KEPT
    assert min(box._parsed) == 3  # the three oldest went first
