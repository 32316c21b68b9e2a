"""Fixtures for the web-facing integration tests."""

from __future__ import annotations

import httpx
import pytest

from bot.app import Overrides, build
from tests.fakes import CapturedWebhooks, MovableClock, RecordingMessenger
from tests.service.chat import Customer


@pytest.fixture
async def captured_bot(settings):
    """The bot with the sandbox's webhooks captured instead of posted, so tests deliver them."""
    webhooks, messenger = CapturedWebhooks(), RecordingMessenger()
    app = build(
        settings, overrides=Overrides(clock=MovableClock(), messenger=messenger, deliver=webhooks)
    )
    async with app.state.services.lifetime(background=False) as services:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://bot.test"
        )
        async with client:
            yield services, client, webhooks, Customer(services, messenger)
