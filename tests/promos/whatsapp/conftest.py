"""The WhatsApp bot fixtures, with a Twilio fake that enforces a sender limit (429 past it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes import MovableClock
from tests.promos.limited_fakes import LimitedTwilio, Window
from tests.servers import served
from tests.whatsapp.conftest import (  # noqa: F401
    ACCOUNT_SID,
    TEMPLATE_SID,
    app,
    bot,
    http,
    template_sid,
    wa_settings,
)
from tests.whatsapp.phone import AUTH_TOKEN


@pytest.fixture
async def twilio(clock: MovableClock) -> AsyncIterator[LimitedTwilio]:
    """Twilio with a generous limit; tests lower ``window.rate`` to the sender's scaled one."""
    fake = LimitedTwilio(
        ACCOUNT_SID, AUTH_TOKEN, clock, templates=frozenset({TEMPLATE_SID}), window=Window(1000)
    )
    async with served(fake.app) as url:
        fake.base_url = url
        yield fake
