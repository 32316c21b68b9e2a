"""POST /whatsapp/webhook: only Twilio's signature for the public URL gets in, and only once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from bot.app import Services
from tests.fake_twilio import FakeTwilio
from tests.whatsapp.phone import AUTH_TOKEN, PUBLIC_URL, SEEN_BY_APP, Phone, sign

Params = dict[str, str]


def added(p: Params) -> tuple[Params, str]:
    return {**p, "Extra": "1"}, sign(p)


def removed(p: Params) -> tuple[Params, str]:
    return {k: v for k, v in p.items() if k != "ProfileName"}, sign(p)


def changed(p: Params) -> tuple[Params, str]:
    return {**p, "Body": p["Body"] + "!"}, sign(p)


def trimmed(p: Params) -> tuple[Params, str]:
    return {**p, "Body": p["Body"].strip()}, sign({**p, "Body": p["Body"] + " "})


def http_not_https(p: Params) -> tuple[Params, str]:
    return p, sign(p, PUBLIC_URL.replace("https://", "http://"))


def another_port(p: Params) -> tuple[Params, str]:
    return p, sign(p, PUBLIC_URL.replace("bot.test", "bot.test:8443"))


def query_added(p: Params) -> tuple[Params, str]:
    return p, sign(p, PUBLIC_URL + "?a=b%20c")


def wrong_token(p: Params) -> tuple[Params, str]:
    return p, sign(p, token=AUTH_TOKEN[::-1])


def url_the_app_sees(p: Params) -> tuple[Params, str]:
    return p, sign(p, SEEN_BY_APP + "/whatsapp/webhook")


def no_signature(p: Params) -> tuple[Params, str]:
    return p, ""


async def rows(bot: Services, table: str) -> int:
    async with bot.engine.connect() as db:
        return (await db.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()


async def test_a_valid_signature_is_accepted_with_empty_twiml(
    bot, phone: Phone, twilio: FakeTwilio
):
    twilio.inbound(phone.address)

    response = await phone.post(phone.form("hola"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    assert len(phone.received()) == 1 and "Soy RecargaBot" in phone.received()[0]
    assert await rows(bot, "customers") == 1 and await rows(bot, "inbound_messages") == 1


@pytest.mark.parametrize(
    "tamper",
    [added, removed, changed, trimmed, http_not_https, another_port, query_added, wrong_token,
     url_the_app_sees, no_signature],
)  # fmt: skip
async def test_a_bad_signature_gets_403_and_no_side_effect(
    bot, phone: Phone, twilio: FakeTwilio, tamper: Callable[[Params], tuple[Params, str]]
):
    twilio.inbound(phone.address)
    params, signature = tamper(phone.form("hola "))

    response = await phone.post(params, signature=signature)

    assert response.status_code == 403
    assert twilio.requests == []
    assert await rows(bot, "customers") == 0 and await rows(bot, "inbound_messages") == 0


async def test_behind_a_proxy_the_public_url_is_checked_not_forwarded_headers(
    phone: Phone, twilio: FakeTwilio
):
    twilio.inbound(phone.address)
    params = phone.form("hola")
    forged = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "127.0.0.1:8000", "Host": "evil"}

    ok = await phone.http.post(
        "/whatsapp/webhook", data=params, headers={"X-Twilio-Signature": sign(params), **forged}
    )

    assert ok.status_code == 200
    assert len(phone.received()) == 1


@pytest.mark.parametrize("idempotency_header", [False, True])
async def test_the_same_message_sid_three_times_is_handled_once(
    bot, phone: Phone, twilio: FakeTwilio, idempotency_header: bool
):
    twilio.inbound(phone.address)
    params = phone.form("hola")
    token = {"I-Twilio-Idempotency-Token": "retry-1"} if idempotency_header else {}
    headers = {"X-Twilio-Signature": sign(params), **token}

    statuses = [
        (await phone.http.post("/whatsapp/webhook", data=params, headers=headers)).status_code
        for _ in range(3)
    ]

    assert statuses == [200, 200, 200]
    assert len(twilio.requests) == 1
    assert await rows(bot, "inbound_messages") == 1


async def test_a_tapped_button_without_body_or_payload_is_read_from_its_title(phone: Phone, twilio):
    await phone.say("hola")
    twilio.inbound(phone.address)
    params = {**phone.form(""), "ButtonText": "Acepto"}

    response = await phone.post(params)

    assert response.status_code == 200
    assert phone.received()[-1].startswith("¿Qué número Claro quieres recargar?")
