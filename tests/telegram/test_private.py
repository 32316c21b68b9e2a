"""Personal data is asked in private chats only; a shared contact is a number; "Usar mi número"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.db import table_rows
from tests.telegram.user import TelegramUser, message_update

GROUP, CHANNEL = -1001234, -1009876
KEPT = ("customers", "conversations", "inbound_messages", "pending_updates", "outbox", "orders")


def group_update(text: str) -> dict[str, Any]:
    """/start@RecargaBot typed in a group the bot is in."""
    update = message_update(7601, text)
    update["message"]["chat"] = {"id": GROUP, "type": "supergroup", "title": "Familia"}
    return update


def channel_post(text: str) -> dict[str, Any]:
    update = message_update(7602, text)
    post = update.pop("message")
    post.pop("from")
    post["chat"] = {"id": CHANNEL, "type": "channel", "title": "Ofertas"}
    return {**update, "channel_post": post}


@pytest.mark.parametrize(
    ("chat_id", "update"),
    [(GROUP, group_update("/start@RecargaBot")), (CHANNEL, channel_post("hola"))],
    ids=["group", "channel"],
)
@pytest.mark.parametrize("polling", [False, True], ids=["webhook", "polling"])
async def test_a_group_or_channel_is_pointed_to_a_private_chat_once_and_nothing_is_kept(
    telegram_settings, running, api, settings, chat_id, update, polling
):
    if polling:
        telegram_settings = telegram_settings.model_copy(update={"public_base_url": None})
    async with running(telegram_settings) as (app, services):
        if polling:
            await api.post_update(update)
            await api.wait_sent(chat_id, 1)
        else:
            await TelegramUser(app, services, api, chat_id).send(update)

    [answer] = api.sent(chat_id)  # the bot has stopped: nothing more will come
    assert "chat privado" in answer.params["text"]
    assert "https://t.me/RecargaBot" in answer.params["text"]
    for table in KEPT:
        assert await table_rows(settings.database_url, table) == [], table


async def test_a_shared_contact_is_read_as_the_number_typed(user):
    maria = user(7603)
    await maria.say("/start")
    await maria.press("accept")
    shared = message_update(7603, "")
    del shared["message"]["text"]
    shared["message"]["contact"] = {
        "phone_number": "+51 987 650 555", "first_name": "María", "user_id": 7603,
    }  # fmt: skip

    [asked] = await maria.send(shared)

    assert "nombre" in asked.params["text"].lower()
    assert "no parece" not in asked.params["text"]


async def test_the_number_step_offers_usar_mi_numero_in_a_private_chat(user):
    maria = user(7604)
    await maria.say("/start")

    [ask] = await maria.press("accept")

    keyboard = ask.params["reply_markup"]["keyboard"]
    assert keyboard == [[{"text": "Usar mi número", "request_contact": True}]]
