"""Shared fixtures: settings for a throwaway database and the bot built by the real build()."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Overrides, Services, build
from bot.settings import Settings
from tests.fakes import MovableClock, RecordingMessenger


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        public_base_url="https://bot.test",
        sandbox_secret_path=tmp_path / "sandbox-secret",
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()


@pytest.fixture
async def services(
    settings: Settings, clock: MovableClock, messenger: RecordingMessenger
) -> AsyncIterator[Services]:
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as running:
        yield running
