"""The bot built by the real build() against the fake Bot API, and Telegram users to drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.app import Overrides, Services, build
from bot.settings import Settings
from tests.fake_telegram import FakeBotApi, serving
from tests.telegram.user import TelegramUser

ADMIN_ID = 4242


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[FakeBotApi, str]]:
    api = FakeBotApi()
    async with serving(api) as base_url:
        yield api, base_url


@pytest.fixture
def api(fake_api: tuple[FakeBotApi, str]) -> FakeBotApi:
    return fake_api[0]


@pytest.fixture
def telegram_settings(settings: Settings, fake_api: tuple[FakeBotApi, str]) -> Settings:
    return settings.model_copy(
        update={
            "telegram_bot_token": SecretStr("123456:TEST-token"),
            "telegram_webhook_secret": SecretStr("s3cret-token_ok"),
            "telegram_api_base_url": fake_api[1],
            "telegram_max_messages_per_second": 2000.0,
            "admin_telegram_ids": frozenset({ADMIN_ID}),
        }
    )


Running = Callable[..., AbstractAsyncContextManager[tuple[Starlette, Services]]]


@pytest.fixture
def running() -> Running:
    """Start a bot built from the settings, as `recargabot serve` does; stop it after."""

    @asynccontextmanager
    async def run(
        settings: Settings, overrides: Overrides | None = None
    ) -> AsyncIterator[tuple[Starlette, Services]]:
        app = build(settings, overrides=overrides)
        async with app.state.services.lifetime(background=False) as services:
            yield app, services

    return run


@pytest.fixture
async def bot(
    telegram_settings: Settings, running: Running
) -> AsyncIterator[tuple[Starlette, Services]]:
    async with running(telegram_settings) as started:
        yield started


@pytest.fixture
def user(bot: tuple[Starlette, Services], api: FakeBotApi) -> Callable[[int], TelegramUser]:
    app, services = bot
    return lambda chat_id: TelegramUser(app, services, api, chat_id)
