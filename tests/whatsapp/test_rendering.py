"""A reply as WhatsApp text: numbered options, the link on its own line, 1,600-character pieces."""

from __future__ import annotations

from adapters.twilio_messenger import MAX_BODY, render, split
from conversations.messages import Link, Option, Reply


def test_options_are_numbered_and_the_link_has_its_own_line():
    reply = Reply("¿Confirmas?", (Option("confirm", "Confirmar"), Option("change", "Cambiar")))
    paid = Reply("Paga aquí.", link=Link("Pagar S/ 10.00", "https://bot.test/x"))

    assert render(reply) == "¿Confirmas?\n\n1. Confirmar\n2. Cambiar"
    assert render(paid) == "Paga aquí.\n\nPagar S/ 10.00:\nhttps://bot.test/x"


def test_long_bodies_are_split_at_line_breaks_within_the_limit():
    lines = [f"{n:04d} " + "x" * 95 for n in range(40)]  # 4,000 characters with the breaks

    pieces = split("\n".join(lines))

    assert all(len(piece) <= MAX_BODY for piece in pieces) and len(pieces) == 3
    assert "\n".join(pieces) == "\n".join(lines)


def test_a_line_longer_than_the_limit_is_cut():
    pieces = split("y" * (MAX_BODY * 2 + 1))

    assert [len(p) for p in pieces] == [MAX_BODY, MAX_BODY, 1]


def test_a_short_body_is_one_piece():
    assert split("hola") == ["hola"]


async def test_a_long_reply_reaches_the_fake_as_several_messages(bot, phone, twilio):
    await phone.say("hola")
    long_reply = Reply("\n".join(f"Línea {n}: " + "z" * 90 for n in range(30)))

    await bot.chat.messenger.send(phone.key, long_reply)

    pieces = phone.received()[1:]
    assert len(pieces) == 2 and all(len(p) <= MAX_BODY for p in pieces)
    assert "\n".join(pieces) == long_reply.text and twilio.refusals == []
