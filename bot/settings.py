"""Settings: the one configuration object, read from the environment and ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting the bot reads; ``.env.example`` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./recargabot.db"
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    stripe_webhook_secret: SecretStr | None = None
    sandbox_secret_path: Path = Path(".recargabot/sandbox-webhook-secret")

    catalog_path: Path | None = None
    privacy_policy_version: str = "2026-11"
    reconcile_interval_seconds: float = 60.0
    log_level: str = "INFO"

    @property
    def base_url(self) -> str:
        """The origin customers and webhooks reach; the local server when none is configured."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")
