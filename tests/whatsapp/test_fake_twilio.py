"""The fake takes content as Twilio's API does, and holds back what WhatsApp would not deliver."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fake_twilio import FakeTwilio
from tests.whatsapp.conftest import TEMPLATE_SID
from tests.whatsapp.phone import SENDER


async def create(twilio: FakeTwilio, **fields: str) -> httpx.Response:
    """POST a message as the twilio Client does: form fields, basic auth."""
    url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    auth = (twilio.account_sid, twilio.auth_token)
    async with httpx.AsyncClient(auth=auth) as client:
        return await client.post(
            url, data={"To": "whatsapp:+51911222333", "From": SENDER, **fields}
        )


async def test_a_content_sid_with_variables_is_taken_without_a_body(twilio: FakeTwilio):
    response = await create(twilio, ContentSid=TEMPLATE_SID, ContentVariables='{"1": "Hola"}')

    assert response.status_code == 201
    assert twilio.messages == [{**twilio.requests[0]}]
    assert twilio.messages[0]["ContentVariables"] == '{"1": "Hola"}'


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, 21602),  # neither Body nor ContentSid
        ({"ContentSid": "HX" + "0" * 32}, 21655),  # not a template of the account
        ({"ContentSid": TEMPLATE_SID, "ContentVariables": "not json"}, 21656),
        ({"ContentSid": TEMPLATE_SID, "ContentVariables": '["Hola"]'}, 21656),
        ({"ContentSid": TEMPLATE_SID, "ContentVariables": '{"1": 2}'}, 21656),
        ({"Body": "Hola", "ContentVariables": '{"1": "Hola"}'}, 21656),  # without a ContentSid
    ],
)
async def test_malformed_content_is_refused_with_twilios_code(
    twilio: FakeTwilio, fields: dict[str, str], code: int
):
    response = await create(twilio, **fields)

    assert response.status_code == 400 and response.json()["code"] == code
    assert twilio.refusals == [code] and twilio.messages == []


@pytest.mark.parametrize(
    "value", ["Recarga exitosa\nGracias", "con\ttab", "cinco     espacios", "z" * 1025]
)
async def test_an_approved_template_variable_whatsapp_refuses_is_taken_but_not_delivered(
    twilio: FakeTwilio, value: str
):
    variables = json.dumps({"1": value})

    response = await create(twilio, ContentSid=TEMPLATE_SID, ContentVariables=variables)

    assert response.status_code == 201  # Twilio takes it; Meta refuses it afterwards
    assert twilio.messages == [] and len(twilio.failed) == 1
