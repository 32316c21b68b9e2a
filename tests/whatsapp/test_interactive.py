"""Buttons, lists and the pay button: content templates in the window, text where they won't fit."""

from __future__ import annotations

import pytest

from bot.app import Services
from bot.settings import Settings
from conversations import messages as msg
from conversations.messages import Link, Option, Reply
from tests.fake_twilio import Content, FakeTwilio, variables
from tests.whatsapp.phone import Phone
from tests.whatsapp.test_journey import pay


def _sid(n: int) -> str:
    return f"HX{n:032x}"


QUICK_REPLY = {n: _sid(n) for n in (1, 2, 3)}
LIST_PICKER = {n: _sid(n) for n in range(4, 11)}
CALL_TO_ACTION = _sid(99)
PAY_PAGE = "https://bot.test/sandbox/checkout/"  # the URL button's fixed start


def _fields(count: int, title: int, option_id: int) -> dict[str, int]:
    """The longest value each variable's field takes: the body, then each title and id."""
    limits = {"1": 1024}
    for n in range(1, count + 1):
        limits[str(2 * n)], limits[str(2 * n + 1)] = title, option_id
    return limits


# As WhatsApp takes them: reply-button titles up to 20 characters, list items up to 24.
CONTENTS = {
    **{sid: Content(_fields(n, 20, 256)) for n, sid in QUICK_REPLY.items()},
    **{sid: Content(_fields(n, 24, 200)) for n, sid in LIST_PICKER.items()},
    CALL_TO_ACTION: Content({"1": 1024, "2": 2000}),
}
INTERACTIVE = {
    "twilio_template_quick_reply_sids": ",".join(f"{n}:{s}" for n, s in QUICK_REPLY.items()),
    "twilio_template_list_picker_sids": ",".join(f"{n}:{s}" for n, s in LIST_PICKER.items()),
    "twilio_template_call_to_action_sid": CALL_TO_ACTION,
    "twilio_template_call_to_action_url_prefix": PAY_PAGE,
}


@pytest.fixture
def interactive() -> bool:
    """Whether the settings name the templates; a test turns them off."""
    return True


@pytest.fixture
def twilio(twilio: FakeTwilio) -> FakeTwilio:
    twilio.contents.update(CONTENTS)
    return twilio


@pytest.fixture
def wa_settings(wa_settings: Settings, interactive: bool) -> Settings:
    return wa_settings.model_copy(update=INTERACTIVE if interactive else {})


def options(*labels: str) -> tuple[Option, ...]:
    return tuple(Option(f"opt:{n}", label) for n, label in enumerate(labels, 1))


def layout(text: str, offered: tuple[Option, ...]) -> dict[str, str]:
    """The documented variables: {{1}} the body, {{2n}} option n's title, {{2n+1}} its id."""
    expected = {"1": text}
    for n, option in enumerate(offered, 1):
        expected[str(2 * n)], expected[str(2 * n + 1)] = option.label, option.id
    return expected


async def sent(bot: Services, phone: Phone, reply: Reply) -> dict[str, str]:
    """Open the window, send ``reply``; the one message Twilio took for it."""
    await phone.say("hola")
    before = len(phone.twilio.to(phone.address))
    await bot.chat.messenger.send(phone.key, reply)
    [message] = phone.twilio.to(phone.address)[before:]
    return message


async def test_quick_reply_variables_are_the_body_then_each_title_and_id(bot, phone: Phone):
    offered = (Option("confirm", "Confirmar"), Option("change", "Cambiar"), Option("x", "No"))

    message = await sent(bot, phone, Reply("¿Confirmas?\nRevisa bien.", offered))

    assert message["ContentSid"] == QUICK_REPLY[3] and "Body" not in message
    assert variables(message) == {
        "1": "¿Confirmas?\nRevisa bien.", "2": "Confirmar", "3": "confirm",
        "4": "Cambiar", "5": "change", "6": "No", "7": "x",
    }  # fmt: skip


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_up_to_three_options_go_as_the_quick_reply_with_that_many_buttons(
    bot, phone: Phone, twilio: FakeTwilio, count: int
):
    offered = options(*(f"Opción {n}" for n in range(1, count + 1)))

    message = await sent(bot, phone, Reply("¿Cuál?", offered))

    assert message["ContentSid"] == QUICK_REPLY[count]
    assert variables(message) == layout("¿Cuál?", offered) and twilio.failed == []


@pytest.mark.parametrize("count", [4, 8, 10])
async def test_four_to_ten_options_go_as_the_list_picker_with_that_many_items(
    bot, phone: Phone, twilio: FakeTwilio, count: int
):
    offered = options("y" * 24, *(f"S/ {n}.00" for n in range(1, count)))  # 24 still fits

    message = await sent(bot, phone, Reply("¿Cuánto recargo?", offered))

    assert message["ContentSid"] == LIST_PICKER[count] and "Body" not in message
    assert variables(message) == layout("¿Cuánto recargo?", offered) and twilio.failed == []


OVER_THE_LIMITS = {
    "11 options": Reply("¿Cuál?", options(*(f"Opción {n}" for n in range(1, 12)))),
    "a 21-character button": Reply("¿Cuál?", options("z" * 21, "Otro")),
    "a 25-character item": Reply("¿Cuál?", options("A", "B", "C", "y" * 25)),
    "a 201-character id": Reply("¿Cuál?", (Option("i" * 201, "Sí"), Option("no", "No"))),
    "a 1,025-character body": Reply("w" * 1025, options("Sí", "No")),
    "options and a link": Reply("¿Pagas?", options("Sí", "No"), link=Link("Pagar", PAY_PAGE + "a")),
}


@pytest.mark.parametrize("reply", OVER_THE_LIMITS.values(), ids=OVER_THE_LIMITS.keys())
async def test_what_exceeds_whatsapps_limits_goes_as_numbered_text(bot, phone: Phone, reply):
    message = await sent(bot, phone, reply)

    assert "ContentSid" not in message
    assert "\n1. " in message["Body"] and message["Body"].startswith(reply.text)


@pytest.mark.parametrize("interactive", [False])
@pytest.mark.parametrize(
    ("reply", "ends"),
    [
        (Reply("¿Confirmas?", options("Confirmar", "Cambiar")), "1. Confirmar\n2. Cambiar"),
        (Reply("¿Cuánto?", options(*(f"S/ {n}" for n in range(1, 9)))), "8. S/ 8"),
        (msg.payment_link(1000, PAY_PAGE + "cs_1"), f"Pagar S/ 10.00:\n{PAY_PAGE}cs_1"),
    ],
)
async def test_without_templates_options_are_numbered_and_the_link_is_text(
    bot, phone: Phone, reply: Reply, ends: str
):
    message = await sent(bot, phone, reply)

    assert "ContentSid" not in message and message["Body"].endswith(ends)


async def test_the_payment_link_goes_as_a_call_to_action_the_link_completing_its_url(
    bot, phone: Phone
):
    reply = msg.payment_link(1000, PAY_PAGE + "cs_test_123")

    message = await sent(bot, phone, reply)

    assert message["ContentSid"] == CALL_TO_ACTION and "Body" not in message
    assert variables(message) == {"1": reply.text, "2": "cs_test_123"}


async def test_a_link_the_button_cannot_open_goes_as_text(bot, phone: Phone):
    message = await sent(bot, phone, msg.payment_link(1000, "https://pay.example/cs_1"))

    assert "ContentSid" not in message
    assert message["Body"].endswith("Pagar S/ 10.00:\nhttps://pay.example/cs_1")


async def test_content_twilio_refuses_goes_as_numbered_text(bot, phone: Phone, twilio: FakeTwilio):
    del twilio.contents[QUICK_REPLY[2]]  # deleted in the Console, still in the settings

    message = await sent(bot, phone, Reply("¿Seguro?", options("Sí", "No")))

    assert message["Body"] == "¿Seguro?\n\n1. Sí\n2. No"
    assert twilio.refusals == [21655, 21655]  # the welcome's buttons too, each then sent as text
    assert all("Body" in m for m in twilio.messages)


async def test_twilio_63016_on_buttons_sends_nothing_more_without_the_template(
    phone: Phone, twilio: FakeTwilio
):
    response = await phone.post(phone.form("hola"))  # Twilio never saw it: its window is closed

    assert response.status_code == 200
    assert twilio.refusals == [63016]
    assert [m.get("ContentSid") for m in twilio.requests] == [QUICK_REPLY[2]]


TYPED = (
    "hola",
    "1",
    "+51 987-654-321",
    "María Quispe",
    "DNI",
    "45678912",
    "1",
    "S/ 10",
    "Confirmar",
)


def pressed(phone: Phone) -> list[dict[str, str]]:
    """The journey of TYPED, each choice pressed: buttons, then the amount from the list."""
    return [
        phone.form("hola"), phone.press("accept", "Acepto"), phone.form("+51 987-654-321"),
        phone.form("María Quispe"), phone.press("doc:dni", "DNI"), phone.form("45678912"),
        phone.press("kind:saldo", "Recarga de saldo"), phone.press("amount:10", "S/ 10.00"),
        phone.press("confirm", "Confirmar"),
    ]  # fmt: skip


def seen(message: dict[str, str]) -> tuple[str | None, str | None, dict[str, str]]:
    """What the customer sees, the checkout's own id aside."""
    shown = variables(message)
    if message.get("ContentSid") == CALL_TO_ACTION:
        shown["2"] = "<checkout>"
    return message.get("ContentSid"), message.get("Body"), shown


async def test_a_pressed_option_drives_the_chat_exactly_like_typing_it(http, twilio: FakeTwilio):
    typist, presser = Phone(http, twilio, "+51911000001"), Phone(http, twilio, "+51911000002")

    typed = await typist.send(*map(typist.form, TYPED))
    tapped = await presser.send(*pressed(presser))

    assert [seen(m) for m in tapped] == [seen(m) for m in typed]
    assert tapped[-1]["ContentSid"] == CALL_TO_ACTION


@pytest.mark.parametrize(
    ("answer", "extra"),
    [
        ("Diez", {"ButtonPayload": "amount:10"}),  # the item's id, whatever the title says
        ("S/ 10.00", {}),  # its title alone, should a list reply carry no payload
        ("10", {}),  # its amount, typed: a figure at the amounts is soles, never a position
    ],
    ids=["payload", "title", "amount"],
)
async def test_a_list_item_is_read_from_its_payload_its_title_or_its_number(
    phone: Phone, answer: str, extra: dict[str, str]
):
    await phone.send(*pressed(phone)[:7])

    [summary] = await phone.send({**phone.form(answer), **extra})

    assert summary["ContentSid"] == QUICK_REPLY[3]
    assert "💰 Total: S/ 10.00" in variables(summary)["1"]


@pytest.mark.parametrize(
    ("payload", "body"),
    # At the amounts a figure is soles, never the item's position (the conversation issue).
    [("HX-foreign-item-7", "S/ 10.00"), ("amount:10-old", "10")],
    ids=["foreign-id-title", "stale-id-amount"],
)
async def test_a_payload_the_chat_does_not_offer_is_read_by_its_title_or_number(
    phone: Phone, payload: str, body: str
):
    await phone.send(*pressed(phone)[:7])

    [summary] = await phone.send(phone.press(payload, body))

    assert summary["ContentSid"] == QUICK_REPLY[3]
    assert "💰 Total: S/ 10.00" in variables(summary)["1"]


async def test_a_button_from_an_earlier_message_is_asked_again_not_taken(phone: Phone):
    await phone.send(*pressed(phone)[:7])

    [again] = await phone.send(phone.press("accept", "Acepto"))  # the consent, long answered

    assert again["ContentSid"] == LIST_PICKER[8]
    assert variables(again)["1"].startswith("No te entendí")


async def test_a_purchase_by_buttons_list_and_pay_button_ends_in_recarga_exitosa(
    bot, phone: Phone, twilio: FakeTwilio
):
    replies = await phone.send(*pressed(phone))
    await pay(bot, PAY_PAGE + variables(replies[-1])["2"])

    assert [m.get("ContentSid") for m in replies] == [
        QUICK_REPLY[2], None, None, QUICK_REPLY[3], None, QUICK_REPLY[2], LIST_PICKER[8],
        QUICK_REPLY[3], CALL_TO_ACTION,
    ]  # fmt: skip
    [notice] = twilio.to(phone.address)[len(replies) :]
    assert notice["ContentSid"] == QUICK_REPLY[2]  # with the promo question's two buttons
    assert variables(notice)["1"].startswith("✅ ¡Recarga exitosa! Tu línea 987 654 321")
    assert twilio.refusals == [] and twilio.failed == []
    assert bot.topups.balances == {"987654321": 1000}
