"""The bot from the real build() with WhatsApp on; Twilio faked over HTTP on a local port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.app import Overrides, Services, build
from bot.settings import Settings
from tests.fake_twilio import FakeTwilio
from tests.fakes import MovableClock
from tests.servers import served
from tests.whatsapp.phone import AUTH_TOKEN, SEEN_BY_APP, SENDER, Phone

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEMPLATE_SID = "HX" + "fedcba0246813579" * 2  # no run of the canary numbers in it


@pytest.fixture
def template_sid() -> str | None:
    """The notification template; tests outside the window parametrize it."""
    return None


@pytest.fixture
async def twilio(clock: MovableClock) -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, clock, templates=frozenset({TEMPLATE_SID}))
    async with served(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def wa_settings(settings: Settings, twilio: FakeTwilio, template_sid: str | None) -> Settings:
    return settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_whatsapp_from": SENDER, "twilio_api_base_url": twilio.base_url,
            "twilio_template_notification_sid": template_sid,
        }
    )  # fmt: skip


@pytest.fixture
async def app(wa_settings: Settings, clock: MovableClock) -> AsyncIterator[Starlette]:
    built = build(wa_settings, overrides=Overrides(clock=clock))
    async with built.state.services.lifetime(background=False):
        yield built


@pytest.fixture
def bot(app: Starlette) -> Services:
    return app.state.services


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app as the reverse proxy reaches it: plain http on a local address."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SEEN_BY_APP) as client:
        yield client


@pytest.fixture
def phone(http: httpx.AsyncClient, twilio: FakeTwilio) -> Phone:
    return Phone(http, twilio)
