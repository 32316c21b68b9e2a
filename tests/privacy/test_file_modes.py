"""Files the bot creates hold keyed hashes, amounts, states and secrets: owner-only (0600), even
under the common umask 022 that would leave them readable by every local user."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Overrides, build
from bot.settings import Settings
from tests.fakes import RecordingMessenger
from tests.service.chat import Customer


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.sqlite_only
@pytest.mark.usefixtures("umask_022")
async def test_database_wal_shm_and_key_files_are_created_owner_only(tmp_path: Path) -> None:
    local = tmp_path / "state" / ".recargabot"
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'state' / 'bot.db'}",
        sandbox_secret_path=local / "sandbox-webhook-secret",
    )
    messenger = RecordingMessenger()
    app = build(settings, overrides=Overrides(messenger=messenger))

    async with app.state.services.lifetime(background=False) as services:
        await Customer(services, messenger).say("hola")  # a write: the WAL and its index exist
        files = {
            name: _mode(tmp_path / "state" / name)
            for name in ("bot.db", "bot.db-wal", "bot.db-shm")
        }

    assert files == {"bot.db": 0o600, "bot.db-wal": 0o600, "bot.db-shm": 0o600}
    assert _mode(local / "sandbox-webhook-secret") == 0o600
    assert _mode(local / "data-keys.json") == 0o600
    assert _mode(local) == 0o700


@pytest.mark.sqlite_only
@pytest.mark.usefixtures("umask_022")
async def test_an_existing_database_readable_by_others_is_narrowed_to_its_owner(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bot.db"
    database.touch(mode=0o644)
    settings = Settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{database}",
        sandbox_secret_path=tmp_path / "sandbox-webhook-secret",
    )  # fmt: skip

    app = build(settings)
    await app.state.services.engine.dispose()

    assert _mode(database) == 0o600
