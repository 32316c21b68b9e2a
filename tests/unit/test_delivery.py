"""The delivery rule: 24-hour window, template fallback, opt-out and blocked customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conversations.delivery import (
    Backoff,
    Fate,
    Refused,
    Route,
    Throttled,
    fate,
    route,
    window_closed,
)
from conversations.errors import DeliveryFailed, NotDeliverableNow
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


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NotDeliverableNow("blocked"), Fate.WAIT),
        (Refused("400 chat not found"), Fate.GIVE_UP),
        (Throttled("429", retry_after=3), Fate.RETRY),
        (DeliveryFailed("502"), Fate.RETRY),
    ],
)
def test_one_fate_for_every_channel(error, expected):
    assert fate(error) is expected


def test_a_bug_is_no_delivery_failure_and_propagates():
    with pytest.raises(KeyError):
        fate(KeyError("bug"))


@pytest.mark.parametrize(
    ("attempts", "error", "seconds"),
    [
        (0, DeliveryFailed("500"), 1),
        (1, DeliveryFailed("500"), 2),
        (3, DeliveryFailed("500"), 8),
        (30, DeliveryFailed("500"), 300),  # at most five minutes apart
        (0, Throttled("429", retry_after=7), 7),  # the vendor's word wins
        (5, Throttled("429"), 32),
    ],
)
def test_backoff_starts_at_one_second_and_honours_retry_after(attempts, error, seconds):
    assert Backoff().delay(attempts, error) == timedelta(seconds=seconds)
