"""The operators' web console, mounted by ``build()`` under /admin (see ``bot.admin.console``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.console import Console
from bot.admin.security import Cookies
from bot.settings import Settings
from conversations.fulfilment import Fulfilment
from conversations.ports import Contacts, Wallet
from conversations.service import ChatService
from storage.campaigns import SqlCampaigns
from storage.catalogue import SqlCatalogue
from storage.crypto import create_private_once
from storage.db import make_sessionmaker
from storage.handoffs import SqlHandoffNotes
from storage.operators import SqlOperators
from storage.privacy import SqlAudit


def session_key(settings: Settings) -> str:
    """The key signing console cookies: CONSOLE_SESSION_KEY, or one kept in a local file (so
    every replica on this disk and every restart accept the same cookies)."""
    if settings.console_session_key:
        return settings.console_session_key.get_secret_value()
    path = settings.sandbox_secret_path.with_name("console-session-key")
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    return create_private_once(path, secrets.token_urlsafe(48)).strip()


def console(
    settings: Settings,
    engine: AsyncEngine,
    *,
    fulfilment: Fulfilment,
    contacts: Contacts,
    audit: SqlAudit,
    clock: Callable[[], datetime],
    chat: ChatService,
    catalogue: SqlCatalogue,
    wallet: Wallet | None = None,
) -> Console:
    """The console; its ``mount()`` is the routes under /admin."""
    sessions = make_sessionmaker(engine)
    return Console(
        settings, engine, SqlOperators(sessions), audit, fulfilment,
        SqlCampaigns(sessions, clock=clock), contacts, Cookies(session_key(settings)), clock,
        chat, SqlHandoffNotes(engine), catalogue, wallet,
    )  # fmt: skip
