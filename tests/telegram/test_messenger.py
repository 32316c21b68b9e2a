"""Telegram's refusals become the core's errors at the messenger, so notices are sent later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.aiohttp_request import AiohttpRequest
from adapters.telegram_messenger import ReplyBot, TelegramMessenger
from conversations.errors import DeliveryFailed, NotDeliverableNow
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from storage.customers import SqlContacts
from tests.fake_telegram import BLOCKED, retry_after

KEY = ChatKey(Channel.TELEGRAM, "8201")
NOTICE = Reply("✅ Recarga exitosa")
CHAT_NOT_FOUND = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
BAD_GATEWAY = {"ok": False, "error_code": 502, "description": "Bad Gateway"}


@pytest.fixture
def contacts(bot) -> SqlContacts:
    _, services = bot
    return SqlContacts(services.engine)


@pytest.fixture
async def messenger(fake_api, contacts) -> AsyncIterator[TelegramMessenger]:
    """A messenger on a bot without rate limiter: a 429 comes back as the limiter's last one."""
    _, base_url = fake_api
    request = AiohttpRequest(4, read_timeout=0.2, write_timeout=0.2)
    async with ReplyBot("123456:TEST-token", base_url=base_url, request=request) as bot:
        yield TelegramMessenger(bot, contacts, lambda: datetime.now(UTC))


@pytest.mark.parametrize("answer", [CHAT_NOT_FOUND, retry_after(5), BAD_GATEWAY])
async def test_other_refusals_raise_delivery_failed_and_leave_the_chat_reachable(
    api, messenger, contacts, answer: dict[str, Any]
):
    api.refuse("sendMessage", answer, chat_id=KEY.chat_id)

    with pytest.raises(DeliveryFailed):
        await messenger.send(KEY, NOTICE)

    assert not (await contacts.contact(KEY)).unreachable
    await messenger.send(KEY, NOTICE)  # the next try goes through
    assert len(api.sent(KEY.chat_id)) == 1


async def test_a_timeout_raises_delivery_failed(api, messenger):
    answer_may_go = api.hold(KEY.chat_id)
    try:
        with pytest.raises(DeliveryFailed):
            await messenger.send(KEY, NOTICE)
    finally:
        answer_may_go.set()


async def test_a_403_marks_the_chat_and_no_send_reaches_telegram_until_it_writes(
    api, messenger, contacts
):
    api.refuse("sendMessage", BLOCKED, chat_id=KEY.chat_id)

    with pytest.raises(NotDeliverableNow):
        await messenger.send(KEY, NOTICE)
    with pytest.raises(NotDeliverableNow):
        await messenger.send(KEY, NOTICE)
    calls_while_blocked = len(api.of("sendMessage"))
    await contacts.first_delivery(KEY, "m1", at=datetime.now(UTC))
    await messenger.send(KEY, NOTICE)

    assert calls_while_blocked == 1
    assert len(api.sent(KEY.chat_id)) == 1
