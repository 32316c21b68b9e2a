"""The handoff inbox's storage, through the real build(): what a chat handed to a person says is
kept (encrypted), listed oldest first, answered by a person, and erased with the customer."""

from __future__ import annotations

from sqlalchemy import text

from conversations.model import Channel, ChatKey
from conversations.ports import Sender
from storage.handoffs import Note, SqlHandoffNotes
from tests.service.chat import Customer

ANA, LUIS = ChatKey(Channel.TERMINAL, "ana-1"), ChatKey(Channel.TERMINAL, "luis-2")


async def rows(services, table: str) -> list[dict]:
    async with services.engine.connect() as db:
        return [dict(r._mapping) for r in (await db.execute(text(f"SELECT * FROM {table}")))]


async def test_a_chat_asking_for_a_person_is_kept_encrypted_with_what_follows(services, messenger):
    ana = Customer(services, messenger, ANA)

    await ana.say("quiero hablar con un asesor", "mi recarga de ayer no llegó")
    [chat] = await SqlHandoffNotes(services.engine).waiting()

    assert chat.key == ANA
    assert [(n.sender, n.body) for n in chat.notes] == [
        (Sender.CUSTOMER, "quiero hablar con un asesor"),
        (Sender.CUSTOMER, "mi recarga de ayer no llegó"),
    ]
    assert ana.texts()[-1].startswith("Listo, le pasé tu chat")  # the second got no answer
    stored = [row["body"] for row in await rows(services, "handoff_notes")]
    assert len(stored) == 2 and not any("recarga" in body or "asesor" in body for body in stored)


async def test_the_chats_waiting_longest_come_first(services, messenger, clock):
    await Customer(services, messenger, LUIS).say("humano")
    clock.advance(minutes=5)
    await Customer(services, messenger, ANA).say("asesor")
    clock.advance(minutes=5)
    await Customer(services, messenger, LUIS).say("¿hay alguien?")

    waiting = await SqlHandoffNotes(services.engine).waiting()

    assert [chat.key for chat in waiting] == [LUIS, ANA]
    assert [n.body for n in waiting[0].notes] == ["humano", "¿hay alguien?"]


async def test_a_chat_back_with_the_bot_no_longer_waits(services, messenger):
    ana = Customer(services, messenger, ANA)
    await ana.say("asesor", "menú")

    assert await SqlHandoffNotes(services.engine).waiting() == []


async def test_only_the_latest_request_for_a_person_is_shown(services, messenger):
    ana = Customer(services, messenger, ANA)
    await ana.say("asesor", "primera vez", "menú", "reclamo")

    [chat] = await SqlHandoffNotes(services.engine).waiting()

    assert [n.body for n in chat.notes] == ["reclamo"]


async def test_a_person_answers_and_hands_the_chat_back_to_the_bot(services, messenger, clock):
    ana = Customer(services, messenger, ANA)
    await ana.say("asesor", "no me llegó la recarga")
    notes = SqlHandoffNotes(services.engine)

    await services.chat.answer_as_person(ANA, "Hola Ana, ya la revisamos: llegó a las 10:02.")
    [chat] = await notes.waiting()
    await services.chat.hand_back(ANA)
    again = await ana.say("hola")

    assert chat.notes[-1] == Note(
        Sender.PERSON, "Hola Ana, ya la revisamos: llegó a las 10:02.", clock()
    )
    assert ana.texts()[-len(again) - 2 :][:2] == [
        "Hola Ana, ya la revisamos: llegó a las 10:02.",
        "¡Aquí estoy de nuevo! 🤖",
    ]
    assert await notes.waiting() == []
    assert again and "Aquí estoy" not in again[0].text  # the bot itself answers "hola"


async def test_erasure_deletes_the_notes(services, messenger):
    ana = Customer(services, messenger, ANA)
    await ana.say("asesor", "mi DNI es 45678912", "menú", "/borrar", "Sí")

    assert await rows(services, "handoff_notes") == []
