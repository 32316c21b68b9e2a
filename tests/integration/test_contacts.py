"""SqlContacts: inbound dedupe and reachability flags, on a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from conversations.model import Channel, ChatKey
from conversations.ports import Contact
from storage.customers import SqlContacts
from storage.db import make_engine
from storage.migrate import upgrade

AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TELEGRAM = ChatKey(Channel.TELEGRAM, "1001")
WHATSAPP = ChatKey(Channel.WHATSAPP, "+51987654321")


@pytest.fixture
async def contacts(database_url):
    engine = make_engine(database_url)
    await upgrade(engine)
    yield SqlContacts(engine)
    await engine.dispose()


async def test_an_unknown_chat_has_never_written(contacts):
    assert await contacts.contact(TELEGRAM) == Contact()


async def test_the_same_message_id_delivered_three_times_at_once_is_first_only_once(contacts):
    results = await asyncio.gather(
        *(contacts.first_delivery(WHATSAPP, "SM123", at=AT) for _ in range(3))
    )

    assert sorted(results) == [False, False, True]
    assert (await contacts.contact(WHATSAPP)).last_inbound_at == AT


async def test_message_ids_are_per_channel(contacts):
    assert await contacts.first_delivery(TELEGRAM, "7", at=AT)
    assert await contacts.first_delivery(WHATSAPP, "7", at=AT)


async def test_flags_are_set_and_cleared_and_none_leaves_them(contacts):
    await contacts.mark(TELEGRAM, at=AT, unreachable=True, opted_out=True)
    await contacts.mark(TELEGRAM, at=AT, opted_out=False)

    assert await contacts.contact(TELEGRAM) == Contact(None, unreachable=True, opted_out=False)


async def test_a_new_message_makes_a_blocked_chat_reachable_again(contacts):
    await contacts.mark(TELEGRAM, at=AT, unreachable=True)

    await contacts.first_delivery(TELEGRAM, "8", at=AT + timedelta(hours=1))

    contact = await contacts.contact(TELEGRAM)
    assert not contact.unreachable and contact.last_inbound_at == AT + timedelta(hours=1)
