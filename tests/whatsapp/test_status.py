"""Twilio's status callbacks: recorded per message; a failure after the send takes the route an
immediate refusal takes; and a status report is never taken for a customer's message."""

from __future__ import annotations

import httpx
import pytest

from bot.app import Services
from tests.db import table_rows
from tests.fake_twilio import FakeTwilio, variables
from tests.whatsapp.conftest import ACCOUNT_SID, TEMPLATE_SID
from tests.whatsapp.phone import SENDER, Phone, sign
from tests.whatsapp.test_journey import HOLA_TO_SUMMARY, pay

STATUS_URL = "https://bot.test/whatsapp/status"


def report(phone: Phone, sid: str, status: str, code: str = "") -> dict[str, str]:
    """The fields Twilio posts to a message's StatusCallback."""
    fields = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "ChannelPrefix": "whatsapp",
        "From": SENDER, "MessageSid": sid, "MessageStatus": status, "SmsSid": sid,
        "SmsStatus": status, "To": phone.address,
    }  # fmt: skip
    return {**fields, "ErrorCode": code} if code else fields


async def post(http: httpx.AsyncClient, path: str, fields: dict[str, str], url: str) -> int:
    headers = {"X-Twilio-Signature": sign(fields, url)}
    return (await http.post(path, data=fields, headers=headers)).status_code


async def notice_sent(bot: Services, phone: Phone, twilio: FakeTwilio) -> str:
    """Buy and pay; return the MessageSid of the "Recarga exitosa" notice."""
    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    await pay(bot, phone.last_link())
    [sid] = [s for s, m in twilio.by_sid.items() if "Recarga exitosa" in m.get("Body", "")]
    return sid


async def outbox_state(database_url: str, sid: str) -> str:
    [row] = [r for r in await table_rows(database_url, "outbox") if r["vendor_id"] == sid]
    return str(row["state"])


async def test_every_send_asks_for_status_callbacks(phone: Phone, twilio: FakeTwilio):
    await phone.say("hola")

    assert {m.get("StatusCallback") for m in twilio.messages} == {STATUS_URL}


async def test_delivered_is_recorded_and_nothing_is_sent_or_started(
    bot: Services, phone: Phone, twilio: FakeTwilio, http: httpx.AsyncClient, database_url: str
):
    sid = await notice_sent(bot, phone, twilio)
    sent, customers = len(twilio.requests), await table_rows(database_url, "customers")

    assert await post(http, "/whatsapp/status", report(phone, sid, "delivered"), STATUS_URL) == 200

    assert await outbox_state(database_url, sid) == "delivered"
    assert len(twilio.requests) == sent
    assert await table_rows(database_url, "customers") == customers


@pytest.mark.parametrize("template_sid", [TEMPLATE_SID])
async def test_failed_63016_sends_the_notice_again_as_the_template(
    bot: Services, phone: Phone, twilio: FakeTwilio, http: httpx.AsyncClient, database_url: str
):
    sid = await notice_sent(bot, phone, twilio)
    customers = await table_rows(database_url, "customers")

    failed = report(phone, sid, "failed", "63016")
    assert await post(http, "/whatsapp/status", failed, STATUS_URL) == 200

    [again] = twilio.requests[-1:]
    assert again["ContentSid"] == TEMPLATE_SID and again["To"] == phone.address
    assert "Recarga exitosa" in variables(again)["1"]
    assert await table_rows(database_url, "customers") == customers


async def test_failed_63016_without_template_waits_and_goes_first_when_the_customer_writes(
    bot: Services, phone: Phone, twilio: FakeTwilio, http: httpx.AsyncClient
):
    sid = await notice_sent(bot, phone, twilio)
    sent = len(twilio.requests)

    failed = report(phone, sid, "failed", "63016")
    assert await post(http, "/whatsapp/status", failed, STATUS_URL) == 200
    untouched = len(twilio.requests) == sent
    replies = await phone.say("hola")

    assert untouched
    assert "Recarga exitosa" in replies[0] and "Hola de nuevo" in replies[1]


async def test_a_report_with_a_bad_signature_is_refused(
    bot: Services, phone: Phone, twilio: FakeTwilio, http: httpx.AsyncClient, database_url: str
):
    sid = await notice_sent(bot, phone, twilio)

    refused = await post(http, "/whatsapp/status", report(phone, sid, "failed", "63016"), "x")

    assert refused == 403 and await outbox_state(database_url, sid) == "sent"


@pytest.mark.parametrize("extra", [{}, {"From": SENDER}], ids=["message-status", "from-our-sender"])
async def test_the_webhook_ignores_what_is_no_customer_message(
    phone: Phone, twilio: FakeTwilio, http: httpx.AsyncClient, database_url: str, extra
):
    fields = (
        report(phone, "SM" + "5" * 32, "delivered")
        if not extra
        else {**phone.form("hola"), **extra}
    )

    status = await post(http, "/whatsapp/webhook", fields, "https://bot.test/whatsapp/webhook")

    assert status == 200 and twilio.requests == []
    assert await table_rows(database_url, "customers") == []
