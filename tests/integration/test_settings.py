"""Settings: documented in .env.example, secrets never shown."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

ENV_EXAMPLE = Path(__file__).parents[2] / ".env.example"


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))

    assert documented == {name.upper() for name in Settings.model_fields}


def test_secrets_do_not_appear_in_the_settings_repr():
    settings = Settings(_env_file=None, stripe_webhook_secret="whsec_topsecret")

    assert "whsec_topsecret" not in repr(settings)
    assert "whsec_topsecret" not in str(settings.model_dump())
