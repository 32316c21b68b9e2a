"""No secret shows in repr() or str() of the settings or of any object of ours that holds one.

The walk starts at the services of a bot built with every secret set to a canary and visits every
object of our own packages it can reach, so a new adapter or key holder is covered without being
named here. Vendor objects are not entered (PTB's ``Bot`` prints its token: we never log it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.reloadly_topups import ReloadlyConfig
from bot.app import build
from bot.settings import Settings
from storage.crypto import DataKeys

FERNET = "kEU1zHw1u2nIfvqKz1N1h3o7YVmG8yZrQ3m4p0m3oTg="
CANARIES = {
    "stripe_secret_key": "sk_test_canaryStripeKey",
    "stripe_webhook_secret": "whsec_canaryWebhook",
    "reloadly_client_secret": "canaryReloadlySecret",
    "twilio_auth_token": "canaryTwilioAuthToken",
    "telegram_bot_token": "123456:canaryTelegramToken",
    "telegram_webhook_secret": "canaryTelegramWebhook",
    "data_encryption_keys": FERNET,
    "data_hash_key": "canaryDataHashKey",
}
DATABASE_PASSWORD = "canaryDatabasePassword"
OURS = ("bot.", "conversations.", "adapters.", "storage.")
SECRET_WORDS = ("secret", "token", "key", "password")


def _shown(value: object) -> str:
    return repr(value) + str(value)


def _leaks(text: str) -> list[str]:
    return [c for c in (*CANARIES.values(), DATABASE_PASSWORD) if c in text]


def test_every_setting_named_like_a_secret_is_a_secret_type():
    """A secret field typed ``str`` would print in repr; names are how a new one is spotted."""
    plain = [
        name
        for name, info in Settings.model_fields.items()
        if any(word in name for word in SECRET_WORDS)
        and not name.endswith(("_path", "_url", "_sid"))
        and SecretStr not in getattr(info.annotation, "__args__", (info.annotation,))
    ]

    assert plain == []


def test_the_settings_show_no_secret_and_no_database_password(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        database_url=f"postgresql+asyncpg://bot:{DATABASE_PASSWORD}@db.internal/recargabot",
        public_base_url="https://bot.test",
        twilio_account_sid="AC" + "0" * 32,
        twilio_whatsapp_from="whatsapp:+14155238886",
        topup_provider="reloadly",
        reloadly_client_id="canary-id",
        **CANARIES,
    )

    assert _leaks(_shown(settings)) == []
    assert "db.internal" in repr(settings)  # the rest of the URL still helps an operator


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(DataKeys((FERNET,), CANARIES["data_hash_key"]), id="DataKeys"),
        pytest.param(
            ReloadlyConfig("canary-id", CANARIES["reloadly_client_secret"], "http://x"),
            id="ReloadlyConfig",
        ),
    ],
)
def test_key_objects_show_no_key(holder: object):
    assert _leaks(_shown(holder)) == []


def _ours(value: object) -> bool:
    return type(value).__module__.startswith(OURS)


def _children(value: object) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list | tuple | set | frozenset):
        yield from value
    elif _ours(value):
        if dataclasses.is_dataclass(value):
            yield from (getattr(value, f.name) for f in dataclasses.fields(value))
        yield from getattr(value, "__dict__", {}).values()
        for name in getattr(type(value), "__slots__", ()):
            yield getattr(value, name, None)


def _reachable(root: object) -> list[object]:
    """Every object of our packages reachable from ``root`` through ours and plain containers."""
    seen: set[int] = set()
    found, todo = [], [root]
    while todo:
        value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if _ours(value):
            found.append(value)
        todo.extend(_children(value))
    return found


async def test_no_object_of_ours_in_a_built_bot_shows_a_secret(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        public_base_url="https://bot.test",
        sandbox_secret_path=tmp_path / "sandbox-secret",
        twilio_account_sid="AC" + "0" * 32,
        twilio_whatsapp_from="whatsapp:+14155238886",
        topup_provider="reloadly",
        reloadly_client_id="canary-id",
        **CANARIES,
    )
    services = build(settings).state.services

    objects = _reachable(services)
    leaking = {type(o).__qualname__: _leaks(_shown(o)) for o in objects if _leaks(_shown(o))}

    assert len(objects) > 20  # the walk did reach the adapters, repositories and services
    assert leaking == {}
    await services.http.aclose()
    await services.engine.dispose()
