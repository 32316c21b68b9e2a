"""Card numbers typed into the chat are never stored or logged; the customer is warned."""

from __future__ import annotations

import logging
import re

import pytest

from conversations.cards import has_card_number
from conversations.model import Channel, ChatKey
from tests.privacy.canary import card_in_clear, card_on_disk, raw_files, raw_tables
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer
from tests.telegram.user import message_update

CARD = "4242 4242 4242 4242"


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("4242424242424242", True),
        ("mi tarjeta es 4242 4242 4242 4242 cvv 123", True),
        ("4000-0027-6000-3184", True),
        ("3782 822463 10005", True),  # Amex 4-6-5
        ("5555555555554444", True),
        ("4242424242424241", False),  # Luhn fails
        ("987654321", False),
        ("987654321 45678912", False),  # a number and a DNI, even if their digits pass Luhn
        ("45678912 987654321 45678912", False),
        ("S/ 10", False),
        ("4" * 20, False),  # 20 digits: not a card length
    ],
)
def test_card_numbers_are_spotted(text, flagged):
    assert has_card_number(text) is flagged


def test_luhn():
    assert has_card_number("4242 4242 4242 4242") and not has_card_number("4242 4242 4242 4241")


@pytest.mark.parametrize(
    ("stored", "found"),
    [
        ('("pago con 4242 4242 4242 4242 12/30 123",)', True),
        ("{'text': '4242424242424242'}", True),
        ("x" * 8_500 + " 4242-4242-4242-4242", True),  # past has_card_number's first window
        ("texto4242424242424242", True),  # glued to a word, as columns are in a file's page
        ("4242424242424242ab", True),
        (f"('{'3fa9' + '4242424242424242' + 'c0ffee' + 'b' * 38}',)", False),  # a 64-hex digest
    ],
)
def test_the_canary_finds_cards_anywhere_but_inside_a_hex_digest(stored, found):
    assert card_in_clear(stored) is found


async def test_a_card_in_the_chat_is_answered_with_a_warning_and_the_link_and_dropped(
    services, messenger, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    customer = Customer(services, messenger, ChatKey(Channel.TERMINAL, "card"))
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    link = customer.last_link()
    before = await services.store.load(customer.key)

    replies = await customer.say(f"pago con {CARD} 12/30 123")

    assert len(replies) == 1 and "número de tarjeta" in replies[0].text
    assert replies[0].link is not None and replies[0].link.url == link
    assert await services.store.load(customer.key) == before
    assert services.chat.guard.cards_seen == 1
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert not re.search(r"4242[ -]?4242", logged)
    assert not card_in_clear(await raw_tables(services.engine))
    assert not card_in_clear(raw_files(settings.database_url).decode("latin-1"))


async def test_a_card_typed_in_telegram_never_reaches_the_disk_on_the_webhook_path(bot, user):
    _app, services = bot
    maria = user(7501)
    await maria.say("/start")

    [warning] = await maria.say(f"pago con {CARD} 12/30 123")

    assert "número de tarjeta" in warning.params["text"]
    assert not card_on_disk(services)


async def test_a_card_typed_in_telegram_never_reaches_the_disk_in_polling_mode(
    telegram_settings, running, api
):
    polling = telegram_settings.model_copy(update={"public_base_url": None})
    async with running(polling) as (_app, services):
        await api.post_update(message_update(7502, "/start", update_id=1))
        await api.post_update(message_update(7502, f"mi tarjeta {CARD}", update_id=2))
        texts = [c.params["text"] for c in await api.wait_sent(7502, 2)]

        assert "número de tarjeta" in texts[1]
        assert not card_on_disk(services)
