"""Settings: documented in .env.example, secrets never shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.sandbox_payments import SandboxPayments
from adapters.sandbox_topups import SandboxTopUps
from bot.app import build
from bot.settings import Settings

ENV_EXAMPLE = Path(__file__).parents[2] / ".env.example"


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))

    assert documented == {name.upper() for name in Settings.model_fields}


def test_secrets_do_not_appear_in_the_settings_repr():
    settings = Settings(_env_file=None, stripe_webhook_secret="whsec_topsecret")

    assert "whsec_topsecret" not in repr(settings)
    assert "whsec_topsecret" not in str(settings.model_dump())


def test_live_reloadly_top_ups_refuse_to_start_with_sandbox_payments():
    with pytest.raises(ValidationError, match="STRIPE_SECRET_KEY"):
        Settings(
            _env_file=None, topup_provider="reloadly", reloadly_client_id="id",
            reloadly_client_secret="secret", reloadly_sandbox=False,
        )  # fmt: skip


def test_reloadly_needs_its_credentials():
    with pytest.raises(ValidationError, match="RELOADLY_CLIENT_ID"):
        Settings(_env_file=None, topup_provider="reloadly")


async def test_without_a_stripe_key_the_sandbox_gateway_and_provider_are_used(settings):
    services = build(settings).state.services

    assert isinstance(services.payments, SandboxPayments)
    assert isinstance(services.topups, SandboxTopUps)
    await services.http.aclose()
    await services.engine.dispose()
