"""Fixtures for the integration tests: a migrated database, and the bot on the web."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Overrides, build
from storage.db import make_engine
from storage.migrate import upgrade
from tests.fakes import CapturedWebhooks, MovableClock, RecordingMessenger
from tests.service.chat import Customer


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An empty database, migrated (test_repositories has its own, on SQLite files and memory)."""
    engine = make_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


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
