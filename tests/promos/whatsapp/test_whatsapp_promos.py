"""Promos over WhatsApp (Twilio fake with a sender limit): ALTA/BAJA, the 24-hour window and
templates, 21610, and 429s retried."""

from __future__ import annotations

import json

from bot.promos import broadcaster, promo_channels
from conversations.broadcast import Promo
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.customers import SqlContacts
from storage.db import make_sessionmaker
from tests.promos.limited_fakes import LimitedTwilio
from tests.whatsapp.conftest import TEMPLATE_SID
from tests.whatsapp.phone import Phone

WHATSAPP = Audience((Channel.WHATSAPP,))
TEXT = "Este finde, doble de megas 🎉"
IMAGE = "https://cdn.recargabot.pe/promos/2x-megas.jpg"


def phones(http, twilio, first: int, count: int) -> list[Phone]:
    return [Phone(http, twilio, number=f"+5191100{n:04d}") for n in range(first, first + count)]


async def run(bot, settings, clock, promo: Promo, **pace: float) -> tuple[int, dict, SqlCampaigns]:
    sessions = make_sessionmaker(bot.engine)
    campaigns = SqlCampaigns(sessions, clock=clock)
    campaign_id = await campaigns.create(promo, WHATSAPP, created_by="test")
    await campaigns.start(campaign_id)
    settings = settings.model_copy(update=pace)
    async with promo_channels(settings, SqlContacts(bot.engine), clock) as channels:
        counts = await broadcaster(settings, campaigns, channels).run(campaign_id, promo)
    return campaign_id, counts, campaigns


def promos_to(twilio: LimitedTwilio, phone: Phone) -> list[dict[str, str]]:
    return [
        m for m in twilio.to(phone.address)
        if m.get("Body") == TEXT or m.get("ContentSid") == TEMPLATE_SID
    ]  # fmt: skip


async def test_window_template_baja_and_21610_decide_who_gets_what(
    bot, http, twilio, wa_settings, clock
):
    late, fresh, baja, stop, silent, no_notice = phones(http, twilio, 1, 6)
    await late.say("hola", "acepto", "ALTA")
    clock.advance(hours=25)  # late's 24-hour window closes
    for phone in (fresh, baja, stop):
        await phone.say("hola", "acepto", "ALTA")
    await baja.say("BAJA")
    await silent.say("hola", "acepto")  # accepted the privacy notice, never opted in
    await no_notice.say("ALTA")  # opted in, but never accepted the privacy notice
    twilio.blocked.add(stop.address)  # STOP at Twilio: it answers 21610
    with_template = Promo(TEXT, template_sid=TEMPLATE_SID, template_vars=json.dumps({"1": "2x"}))

    _, counts, _ = await run(bot, wa_settings, clock, with_template)
    _, without, _ = await run(bot, wa_settings, clock, Promo(TEXT))

    assert [m.get("Body") for m in promos_to(twilio, fresh)] == [TEXT, TEXT]
    (template,) = promos_to(twilio, late)  # the template only: nothing free-form outside
    assert template["ContentSid"] == TEMPLATE_SID and "Body" not in template
    for phone in (baja, stop, silent, no_notice):
        assert promos_to(twilio, phone) == []
    assert (counts["sent"], counts["opted_out"]) == (2, 1)
    assert (without["sent"], without["skipped"]) == (1, 1)  # late: no template, skipped
    contact = await SqlContacts(bot.engine).contact(stop.key)
    assert contact.opted_out and contact.unreachable


async def test_past_the_sender_limit_every_429_is_retried_and_each_gets_one(
    bot, http, twilio, wa_settings, clock
):
    everyone = phones(http, twilio, 100, 12)
    for phone in everyone:
        await phone.say("hola", "acepto", "ALTA")
    twilio.window.rate = 5  # the sender's limit, scaled; the promos are paced at 20/s

    _, counts, _ = await run(bot, wa_settings, clock, Promo(TEXT), promo_whatsapp_per_second=20.0)

    assert twilio.too_many > 0 and counts["retried"] == twilio.too_many
    assert [len(promos_to(twilio, phone)) for phone in everyone] == [1] * 12
    assert counts["sent"] == 12


async def test_an_image_goes_as_media_url_with_the_text_as_its_body(
    bot, http, twilio, wa_settings, clock
):
    (phone,) = phones(http, twilio, 200, 1)
    await phone.say("hola", "acepto", "ALTA")

    _, counts, _ = await run(bot, wa_settings, clock, Promo(TEXT, image_url=IMAGE))

    (message,) = promos_to(twilio, phone)
    assert (message["Body"], message["MediaUrl"]) == (TEXT, IMAGE)
    assert counts["sent"] == 1


async def test_a_promo_twilio_refuses_is_failed_and_not_retried(
    bot, http, twilio, wa_settings, clock
):
    (late,) = phones(http, twilio, 300, 1)
    await late.say("hola", "acepto", "ALTA")
    clock.advance(hours=25)  # outside the window: the template, which Twilio does not know
    unknown_template = Promo(TEXT, template_sid="HX" + "0" * 32)

    campaign_id, counts, campaigns = await run(bot, wa_settings, clock, unknown_template)

    assert twilio.refusals.count(21655) == 1 and promos_to(twilio, late) == []
    assert (counts["failed"], counts["retried"]) == (1, 0)
    assert await campaigns.tally(campaign_id) == {"failed": 1}
