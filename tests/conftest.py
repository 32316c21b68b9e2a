"""Shared fixtures: settings for a throwaway database and the bot built by the real build()."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.sandbox_payments import SandboxPayments
from adapters.sandbox_topups import SandboxTopUps
from bot.app import Overrides, Services, build
from bot.settings import Settings
from storage.db import make_engine
from tests.fakes import MovableClock, RecordingMessenger
from tests.money import check_money
from tests.privacy.canary import LogWatch

POSTGRES_URL_VARIABLE = "RECARGABOT_TEST_DATABASE_URL"  # set by scripts/with-postgres.sh
LOG_WATCH = pytest.StashKey[LogWatch]()


def pytest_configure(config: pytest.Config) -> None:
    """Search every log line of the session for personal data (tests/privacy/test_suite_logs)."""
    config.stash[LOG_WATCH] = LogWatch.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the other database's own tests; run the after_suite checks last."""
    other = "sqlite_only" if os.environ.get(POSTGRES_URL_VARIABLE) else "postgres_only"
    for item in items:
        if item.get_closest_marker(other):
            item.add_marker(pytest.mark.skip(reason=f"{other}: a feature of the other database"))
    items.sort(key=lambda item: item.get_closest_marker("after_suite") is not None)


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """An empty database for one test: SQLite in tmp_path, or the suite's PostgreSQL, emptied."""
    postgres = os.environ.get(POSTGRES_URL_VARIABLE)
    if not postgres:
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(postgres)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return postgres


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
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
    await check_sandbox_money(settings.database_url, running)


async def check_sandbox_money(database_url: str, services: Services) -> None:
    """The money invariants against the sandbox gateway's and provider's own ledgers."""
    payments, topups = services.payments, services.topups
    assert isinstance(payments, SandboxPayments) and isinstance(topups, SandboxTopUps)
    await check_money(
        database_url,
        charged=lambda row: payments.charged.get(row["id"], 0),
        refunded=lambda row: payments.refunds.get(row["id"], 0),
        credited=lambda row: topups.credited.get(row["id"], 0),
    )
