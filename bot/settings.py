"""Settings: the one configuration object, read from the environment and ``.env``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url


class Settings(BaseSettings):
    """Every setting the bot reads; ``.env.example`` documents each one."""

    # hide_input_in_errors: a refused setting must not echo tokens or keys into an error message.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str = "sqlite+aiosqlite:///./recargabot.db"
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # The web edge (bot/edge.py): seconds a request may take to send its body, and the connections
    # uvicorn keeps (idle ones included) before it answers 503.
    http_read_timeout_seconds: float = Field(default=10.0, gt=0)
    http_max_connections: int = Field(default=1000, ge=1)

    stripe_webhook_secret: SecretStr | None = None
    sandbox_secret_path: Path = Path(".recargabot/sandbox-webhook-secret")
    stripe_secret_key: SecretStr | None = None
    stripe_api_base_url: str = "https://api.stripe.com"

    topup_provider: Literal["sandbox", "reloadly"] = "sandbox"
    reloadly_client_id: str | None = None
    reloadly_client_secret: SecretStr | None = None
    reloadly_sandbox: bool = True
    reloadly_api_base_url: str | None = None
    reloadly_auth_url: str = "https://auth.reloadly.com/oauth/token"
    reloadly_timeout_seconds: float = 10.0
    topup_max_attempts: int = 4
    topup_retry_base_seconds: float = 30.0
    topup_hold_retry_minutes: float = 10.0
    topup_hold_refund_after_minutes: float = 120.0

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_template_notification_sid: str | None = None
    twilio_template_quick_reply_sids: str | None = None  # "2:HX…,3:HX…": buttons → Content SID
    twilio_template_list_picker_sids: str | None = None  # "4:HX…,…,10:HX…": items → Content SID
    twilio_template_call_to_action_sid: str | None = None
    twilio_template_call_to_action_url_prefix: str | None = None  # the URL button's fixed start

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_max_messages_per_second: float = 30.0
    # How long a Bot API call may take before it counts as failed (the outbox sends it again).
    telegram_timeout_seconds: float = Field(default=5.0, gt=0)
    admin_telegram_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # The dashboard warns when the top-up provider's wallet holds less than this, in the wallet's
    # own currency (USD at Reloadly, soles in the sandbox).
    wallet_low_balance: float = Field(default=100.0, ge=0)
    console_session_key: SecretStr | None = None  # signs /admin cookies; default: a local file

    # Promo campaigns: paced below each channel's limit so customers' own replies keep priority.
    promo_telegram_per_second: float = Field(default=25.0, gt=0)
    promo_telegram_per_chat_seconds: float = Field(default=1.0, ge=0)
    promo_whatsapp_per_second: float = Field(default=10.0, gt=0)
    promo_concurrency: int = Field(default=16, ge=1)

    privacy_policy_version: str = "2026-11"
    # What a customer who asks for a person is told, and the virtual Libro de Reclamaciones
    # (Indecopi requires one for consumer complaints) shown on "reclamo".
    service_hours: str = "de lunes a sábado, de 9:00 a 18:00"
    complaints_book_url: str | None = None

    data_encryption_keys: SecretStr | None = None  # Fernet keys, comma-separated, newest first
    data_hash_key: SecretStr | None = None
    data_keys_path: Path | None = None  # demo keys; default: beside SANDBOX_SECRET_PATH
    retention_days: int = 365
    limit_messages_per_minute: int = 20
    limit_open_checkouts: int = 3
    limit_checkouts_per_hour: int = 5
    limit_topups_per_recipient_day: int = 5
    limit_soles_per_recipient_day: int = 300
    reconcile_interval_seconds: float = 60.0
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_real_airtime_for_fake_money(self) -> Self:
        """Refuse live top-ups paid by the sandbox gateway, and Reloadly without credentials."""
        if self.topup_provider == "reloadly":
            if not (self.reloadly_client_id and self.reloadly_client_secret):
                raise ValueError("TOPUP_PROVIDER=reloadly needs RELOADLY_CLIENT_ID and _SECRET")
            if not self.reloadly_sandbox and self.stripe_secret_key is None:
                raise ValueError("live Reloadly top-ups need real payments: set STRIPE_SECRET_KEY")
        return self

    @model_validator(mode="after")
    def _stripe_needs_its_webhook_secret(self) -> Self:
        """Refuse real payments whose webhooks could not be verified (no fulfilment would run)."""
        if self.stripe_secret_key and not self.stripe_webhook_secret:
            raise ValueError("STRIPE_SECRET_KEY needs STRIPE_WEBHOOK_SECRET (whsec_…) as well")
        return self

    @model_validator(mode="after")
    def _whatsapp_needs_a_sender(self) -> Self:
        """Refuse Twilio credentials without the WhatsApp sender the replies come from."""
        if self.twilio_account_sid and self.twilio_auth_token and not self.twilio_whatsapp_from:
            raise ValueError("WhatsApp through Twilio needs TWILIO_WHATSAPP_FROM (whatsapp:+…)")
        return self

    @field_validator("admin_telegram_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        """Read ADMIN_TELEGRAM_IDS as "123,456" (numeric Telegram user ids)."""
        if isinstance(value, str):
            return frozenset(int(part) for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _telegram_webhook_needs_a_secret(self) -> Self:
        """Refuse a Telegram webhook (token and public URL) that anyone could post to."""
        if self.telegram_bot_token and self.public_base_url and not self.telegram_webhook_secret:
            raise ValueError("a Telegram webhook needs TELEGRAM_WEBHOOK_SECRET (A-Z a-z 0-9 _ -)")
        return self

    @model_validator(mode="after")
    def _data_keys_come_together(self) -> Self:
        """Refuse one data key without the other: rows would be unreadable or unfindable."""
        if bool(self.data_encryption_keys) != bool(self.data_hash_key):
            raise ValueError("set DATA_ENCRYPTION_KEYS and DATA_HASH_KEY together (or neither)")
        keys = self.data_encryption_keys.get_secret_value() if self.data_encryption_keys else ""
        for key in filter(None, (k.strip() for k in keys.split(","))):
            try:
                Fernet(key)
            except ValueError:  # the message must not quote the key
                raise ValueError("DATA_ENCRYPTION_KEYS: a value is not a Fernet key") from None
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """What repr() and str() show: every field, the database URL without its password."""
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = make_url(value).render_as_string(hide_password=True)
            yield name, value

    @property
    def base_url(self) -> str:
        """The origin customers and webhooks reach; the local server when none is configured."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")
