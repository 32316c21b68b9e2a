"""A database of customers in every promo situation, and the limited fakes served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from conversations.model import Channel, ChatKey
from storage.campaigns import SqlCampaigns
from storage.chats import SqlConversationStore
from storage.customers import SqlContacts
from storage.db import Sessions, make_engine, make_sessionmaker
from storage.migrate import upgrade
from tests.fake_telegram import serving
from tests.promos.limited_fakes import LimitedBotApi, Window, serving_in_thread

# The Telegram fixtures (bot, user, running…) drive the customer during a campaign.
from tests.telegram.conftest import (  # noqa: F401
    api,
    bot,
    running,
    telegram_settings,
    user,
)

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add a measured figure to the summary at the end of the run (-q hides a test's prints)."""
    return request.config.stash.setdefault(FIGURES, []).append


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the figures the promo tests measured."""
    figures = config.stash.get(FIGURES, [])
    if figures:
        terminalreporter.section("promo figures")
        for line in figures:
            terminalreporter.write_line(line)


@dataclass
class Customers:
    """Creates customers the way the bot does: first message, then their promo answer."""

    contacts: SqlContacts
    store: SqlConversationStore

    @classmethod
    def of(cls, engine: AsyncEngine) -> Customers:
        return cls(SqlContacts(engine), SqlConversationStore(engine))

    async def add(
        self, chat_id: int, *, opt_in: bool | None = True, consent: bool = True
    ) -> ChatKey:
        key = ChatKey(Channel.TELEGRAM, str(chat_id))
        await self.contacts.first_delivery(key, f"m{chat_id}", at=NOW)
        if consent:  # the privacy notice accepted (erased customers lose it)
            await self.store.record_consent(key, version="2026-11", at=NOW)
        if opt_in is not None:
            await self.store.record_promos(key, opt_in=opt_in, at=NOW)
        return key

    async def many(self, first: int, count: int) -> list[ChatKey]:
        return [await self.add(chat_id) for chat_id in range(first, first + count)]


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return make_sessionmaker(engine)


@pytest.fixture
def campaigns(sessions: Sessions) -> SqlCampaigns:
    return SqlCampaigns(sessions, clock=lambda: NOW)


@pytest.fixture
def customers(engine: AsyncEngine) -> Customers:
    return Customers.of(engine)


@pytest.fixture
def window() -> Window:
    """The fake Telegram's limits; tests scale them."""
    return Window(rate=100, per_chat=1.0)


@pytest.fixture
async def fake_api(window: Window) -> AsyncIterator[tuple[LimitedBotApi, str]]:
    """The limited fake in this event loop (the Telegram user fixtures wait on it)."""
    limited = LimitedBotApi(window=window)
    async with serving(limited) as base_url:
        yield limited, base_url


@pytest.fixture
def paced_api(window: Window) -> Iterator[tuple[LimitedBotApi, str]]:
    """The limited fake in a thread of its own: its clock is not held up by the sender's loop."""
    limited = LimitedBotApi(window=window)
    with serving_in_thread(limited) as base_url:
        yield limited, base_url
