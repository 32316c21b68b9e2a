"""The handoff inbox and the catalogue page over HTTP: what they show (masked), and their actions
through the chat service and the catalogue's own functions, audited."""

from __future__ import annotations

from conversations.model import Channel, ChatKey
from tests.admin.conftest import ADMIN, AGENT, Console
from tests.service.chat import Customer

ROSA = ChatKey(Channel.WHATSAPP, "+51987654321")  # a WhatsApp chat id is a phone number


async def asking(console: Console, messenger, *texts: str) -> Customer:
    rosa = Customer(console.services, messenger, ROSA)
    await rosa.say("quiero hablar con un asesor", *texts)
    return rosa


async def audited(console: Console) -> list[tuple[str, str, bool, str | None]]:
    entries = await console.services.audit.entries()
    return [(e.actor, e.action, e.allowed, e.target) for e in entries]


async def test_the_inbox_shows_the_waiting_chat_masked_with_what_it_wrote(
    staffed: Console, messenger
):
    await asking(staffed, messenger, "mi número 987654321 no recibió nada")
    agent = staffed.browser()
    await agent.login(AGENT)

    page = await agent.get("/admin/handoffs")

    assert page.status_code == 200
    assert "quiero hablar con un asesor" in page.text
    assert "mi número ******321 no recibió nada" in page.text
    assert "987654321" not in page.text and "whatsapp:…4321" in page.text


async def test_an_agent_answers_and_gives_the_chat_back_to_the_bot(staffed: Console, messenger):
    rosa = await asking(staffed, messenger, "¿me ayudan?")
    agent = staffed.browser()
    await agent.login(AGENT)
    page = await agent.get("/admin/handoffs")
    customer_id = page.text.split('action="/admin/handoffs/')[1].split('"')[0]

    answered = await agent.post(
        f"/admin/handoffs/{customer_id}",
        {"text": "Hola, soy Carla. Ya lo vemos.", "intent": "answer_back"},
    )
    again = await rosa.say("hola")
    after = await agent.get("/admin/handoffs")

    assert answered.status_code == 303
    assert rosa.texts()[-len(again) - 2 : -len(again)] == [
        "Hola, soy Carla. Ya lo vemos.",
        "¡Aquí estoy de nuevo! 🤖",
    ]
    assert again and "le pasé tu chat" not in again[0].text
    assert "Ningún chat espera ahora." in after.text
    assert (await audited(staffed))[-1] == (
        f"console:{AGENT}",
        "handoff_answer_back",
        True,
        f"customer:{customer_id}",
    )


async def test_answering_a_chat_already_back_with_the_bot_sends_nothing(
    staffed: Console, messenger
):
    rosa = await asking(staffed, messenger)
    agent = staffed.browser()
    await agent.login(AGENT)
    page = await agent.get("/admin/handoffs")
    customer_id = page.text.split('action="/admin/handoffs/')[1].split('"')[0]
    await rosa.say("menú")
    sent = len(rosa.texts())

    late = await agent.post(f"/admin/handoffs/{customer_id}", {"text": "Hola", "intent": "answer"})

    assert late.status_code == 409
    assert len(rosa.texts()) == sent


async def test_an_admin_hides_a_package_and_the_bot_stops_offering_it(staffed: Console, messenger):
    listed = await staffed.services.catalogue.listing()
    first = listed[0]
    admin = staffed.browser()
    await admin.login(ADMIN)

    hidden = await admin.post(f"/admin/catalogue/{first.code}/hide", {})
    page = await admin.get("/admin/catalogue")
    on_sale = await staffed.services.catalogue.current()

    assert hidden.status_code == 303
    assert f'id="show-{first.code}"' in page.text
    assert first.code not in [p.code for p in on_sale.packages]
    assert (await audited(staffed))[-1] == (
        f"console:{ADMIN}",
        "package_hide",
        True,
        f"package:{first.code}",
    )


async def test_an_admin_renames_and_moves_a_package(staffed: Console):
    listed = await staffed.services.catalogue.listing()
    last = listed[-1]
    admin = staffed.browser()
    await admin.login(ADMIN)

    await admin.post(
        f"/admin/catalogue/{last.code}/rename",
        {"name": "Redes Plus", "details": "WhatsApp ilimitado"},
    )
    await admin.post(f"/admin/catalogue/{last.code}/move", {"position": "0"})
    first = (await staffed.services.catalogue.listing())[0]

    assert first.code == last.code
    assert (first.product().name, first.product().details) == ("Redes Plus", "WhatsApp ilimitado")


async def test_an_agent_sees_the_catalogue_but_cannot_change_it(staffed: Console):
    code = (await staffed.services.catalogue.listing())[0].code
    agent = staffed.browser()
    await agent.login(AGENT)

    page = await agent.get("/admin/catalogue")
    refused = await agent.post(f"/admin/catalogue/{code}/hide", {})

    assert code in page.text and f'id="hide-{code}"' not in page.text
    assert refused.status_code == 403
    assert code in [p.code for p in (await staffed.services.catalogue.current()).packages]
    assert (await audited(staffed))[-1] == (
        f"console:{AGENT}",
        "package_hide",
        False,
        f"package:{code}",
    )


async def test_a_catalogue_change_without_its_csrf_token_is_refused(staffed: Console):
    code = (await staffed.services.catalogue.listing())[0].code
    admin = staffed.browser()
    await admin.login(ADMIN)

    refused = await admin.post(f"/admin/catalogue/{code}/hide", {}, csrf=False)

    assert refused.status_code == 403
    assert code in [p.code for p in (await staffed.services.catalogue.current()).packages]
