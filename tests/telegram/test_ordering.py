"""Per-chat order without head-of-line blocking: a chat's backlog holds none of the global slots."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.telegram_app import MAX_CONCURRENT_UPDATES, PerChatUpdateProcessor
from tests.telegram.user import message_update


def update_of(chat_id: int) -> Update:
    return Update.de_json(message_update(chat_id, "hola"), None)


async def test_a_chat_waiting_for_its_turn_leaves_the_slots_to_other_chats():
    """Two slots and a chat with five updates, the first stuck: another chat still runs."""
    processor = PerChatUpdateProcessor(slots=2)
    first_may_finish, ran = asyncio.Event(), []

    async def work(name: str) -> None:
        if name == "a0":
            await first_may_finish.wait()
        ran.append(name)

    flood = [processor.process_update(update_of(1), work(f"a{i}")) for i in range(5)]
    flooding = [asyncio.ensure_future(update) for update in flood]
    await asyncio.wait_for(processor.process_update(update_of(2), work("b")), 5)
    ran_before_a0 = list(ran)
    first_may_finish.set()
    await asyncio.gather(*flooding)

    assert ran_before_a0 == ["b"]
    assert ran == ["b", "a0", "a1", "a2", "a3", "a4"]  # the chat's own updates in arrival order


async def test_a_chat_flooding_the_bot_does_not_hold_up_another_chats_reply(bot, user, api):
    """Every slot's worth of updates queued behind one chat's unanswered reply."""
    flooder, other = user(9001), user(9002)
    first_reply_may_go = api.hold(9001)
    try:
        await flooder.post(message_update(9001, "/ayuda"))
        await api.wait_for(lambda: "9001" in api.held)  # its turn is taken, its reply pending
        floods = [
            flooder.post(message_update(9001, "/ayuda")) for _ in range(MAX_CONCURRENT_UPDATES)
        ]
        assert set(await asyncio.gather(*floods)) == {200}

        replies = await other.say("/ayuda")
        flooder_by_then = len(api.sent(9001)), list(api.held)
    finally:
        first_reply_may_go.set()
    await api.wait_sent(9001, 1)

    assert "Te ayudo" in replies[0].params["text"]
    # Answered while the flood's first reply was still pending (not given up on after the
    # client's timeout, which would have let a second one reach the fake).
    assert flooder_by_then == (0, ["9001"])
