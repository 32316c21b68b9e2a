"""Telegram's limits on what the bot sends: 64-byte callback_data, 4,096-character messages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.telegram_messenger import render
from conversations.messages import Link, Option, Reply
from conversations.model import Channel, ChatKey
from tests.telegram.user import buttons

MAX_CALLBACK_BYTES = 64
MAX_TEXT_UNITS = 4096  # UTF-16 code units, as Telegram counts


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def callback_data(reply: Reply) -> list[str]:
    _, markup = render(reply)[-1]
    assert markup is not None
    return [b.callback_data for row in markup.inline_keyboard for b in row if b.callback_data]


def long_reply() -> Reply:
    """Over two messages' worth of text (emoji count two units), a keyboard and a pay button."""
    text = "\n".join(f"Línea {n}: recarga Claro 📱 " + "paquete " * 20 for n in range(80))
    options = (Option("ok", "Sí"), Option("promo:" + "x" * 80, "Paquete con un id muy largo"))
    return Reply(text, options, link=Link("Pagar", "https://pay.example/cs_1"))


@given(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=8))
def test_callback_data_never_exceeds_64_bytes(ids):
    reply = Reply("Elige:", tuple(Option(i, f"Opción {n}") for n, i in enumerate(ids)))

    assert all(len(data.encode()) <= MAX_CALLBACK_BYTES for data in callback_data(reply))


def test_an_id_too_long_for_callback_data_falls_back_to_its_position():
    ids = ["ok", "x" * 64, "x" * 65, "ñ" * 33]  # the last: 33 characters, 66 bytes

    sent = callback_data(Reply("Elige:", tuple(Option(i, i[:10]) for i in ids)))

    assert sent == ["ok", "x" * 64, "#3", "#4"]


def test_a_reply_over_4096_characters_is_split_with_the_keyboard_on_the_last_part():
    reply = long_reply()

    parts = render(reply)

    assert len(parts) >= 3 and all(units(text) <= MAX_TEXT_UNITS for text, _ in parts)
    assert [markup is not None for _, markup in parts] == [False] * (len(parts) - 1) + [True]
    assert " ".join(text for text, _ in parts).split() == reply.text.split()  # nothing lost


async def test_a_long_reply_reaches_telegram_as_several_messages_keyboard_last(bot, api):
    _, services = bot
    reply = long_reply()

    await services.chat.messenger.send(ChatKey(Channel.TELEGRAM, "8101"), reply)

    sent = api.sent(8101)
    assert len(sent) == len(render(reply)) >= 3
    assert all(units(call.params["text"]) <= MAX_TEXT_UNITS for call in sent)
    assert [bool(buttons(call)) for call in sent] == [False] * (len(sent) - 1) + [True]
    assert [b.get("callback_data") or b["url"] for b in buttons(sent[-1])] == [
        "ok",
        "#2",
        "https://pay.example/cs_1",
    ]
