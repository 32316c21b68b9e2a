"""The delivery rule: 24-hour window, template fallback, opt-out and blocked customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conversations.delivery import Route, route, window_closed
from conversations.messages import Reply
from conversations.ports import Contact

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
RECENT, STALE = NOW - timedelta(hours=23, minutes=59), NOW - timedelta(hours=24)
NOTICE, PROMO = Reply("✅ ¡Recarga exitosa!"), Reply("Doble de megas", essential=False)


@pytest.mark.parametrize(
    ("contact", "reply", "has_template", "expected"),
    [
        (Contact(RECENT), NOTICE, False, Route.FREE_FORM),
        (Contact(RECENT), PROMO, False, Route.FREE_FORM),
        (Contact(STALE), NOTICE, True, Route.TEMPLATE),
        (Contact(STALE), NOTICE, False, Route.LATER),
        (Contact(None), NOTICE, False, Route.LATER),
        (Contact(STALE), PROMO, True, Route.DROP),
        (Contact(RECENT, opted_out=True), PROMO, False, Route.DROP),
        (Contact(RECENT, opted_out=True), NOTICE, False, Route.FREE_FORM),
        (Contact(RECENT, unreachable=True), NOTICE, True, Route.LATER),
        (Contact(RECENT, unreachable=True), PROMO, False, Route.DROP),
    ],
)  # fmt: skip
def test_route(contact, reply, has_template, expected):
    assert route(contact, reply, now=NOW, has_template=has_template) is expected


@pytest.mark.parametrize(
    ("reply", "has_template", "expected"),
    [(NOTICE, True, Route.TEMPLATE), (NOTICE, False, Route.LATER), (PROMO, True, Route.DROP)],
)
def test_when_twilio_says_the_window_closed(reply, has_template, expected):
    assert window_closed(reply, has_template=has_template) is expected
