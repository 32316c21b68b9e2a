"""A card number typed into WhatsApp never reaches the disk, not even encrypted."""

from __future__ import annotations

from bot.app import Services
from tests.privacy.canary import card_on_disk
from tests.whatsapp.phone import Phone


async def test_a_card_typed_in_whatsapp_never_reaches_the_disk(bot: Services, phone: Phone):
    replies = await phone.say("hola", "pago con 4242 4242 4242 4242")

    warning = replies[-1]
    assert "número de tarjeta" in warning
    assert not card_on_disk(bot)
