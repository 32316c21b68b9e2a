"""The Telegram fixtures for the admin tests, and a bot with all three webhook routes."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.app import webhook_secret
from tests.telegram.conftest import api, bot, fake_api, running, telegram_settings, user
from tests.whatsapp.phone import AUTH_TOKEN

__all__ = ["api", "bot", "fake_api", "running", "telegram_settings", "user"]


@pytest.fixture
async def webhooks(telegram_settings, running):
    """A client on the bot with all three webhook routes, its Stripe secret, and a row counter."""
    every_channel = telegram_settings.model_copy(
        update={
            "twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_whatsapp_from": "whatsapp:+14155238886",
            "twilio_api_base_url": "http://127.0.0.1:9",
        }
    )  # fmt: skip
    async with running(every_channel) as (app, services):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bot.test") as client:

            async def count_rows() -> int:
                total = 0
                async with services.engine.connect() as connection:
                    for table in SQLModel.metadata.tables:
                        query = text(f"SELECT count(*) FROM {table}")
                        total += (await connection.execute(query)).scalar_one()
                return total

            yield client, webhook_secret(every_channel), count_rows
