"""The tables. Rows are storage's own: repositories map them to the core's types and back.

Timestamps are timezone-aware UTC (``UtcDateTime``); money is integer céntimos (``amount_cents``);
enums are stored as their readable string values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from storage.crypto import EncryptedText, KeyedHash


class UtcDateTime(TypeDecorator[datetime]):
    """An aware timestamp written in UTC; SQLite hands back naive values, read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: storage needs an aware one")
        # SQLite keeps the wall time and drops the offset, so every value must share one zone.
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value  # the DateTime column reads as datetime
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Who may get promos now (storage.campaigns): an audience's size is read from this index alone,
# 4 ms instead of 200 ms over 50,000 customers (bench/console_bench.py).
_PROMO_AUDIENCE = text(
    "promos_opt_in_at IS NOT NULL AND consent_version IS NOT NULL"
    " AND opted_out_at IS NULL AND unreachable_at IS NULL"
)


class CustomerRow(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("channel", "chat_hash"),
        Index(
            "ix_customers_promo_audience", "channel",
            sqlite_where=_PROMO_AUDIENCE, postgresql_where=_PROMO_AUDIENCE,
        ),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    chat_id: str = Field(sa_type=EncryptedText)  # a WhatsApp chat id is a phone number
    chat_hash: str = Field(sa_type=KeyedHash)  # the lookup key: HMAC of chat_id
    consent_version: str | None = None
    consented_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    last_seen_at: datetime = Field(sa_type=UtcDateTime)
    last_inbound_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    unreachable_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    opted_out_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Promos need an explicit yes (Ley 29733): when it was given; None = no promos.
    promos_opt_in_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    promos_asked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # asked once


class InboundMessageRow(SQLModel, table=True):
    """Provider message ids already handled (Telegram update_id, Twilio MessageSid)."""

    __tablename__ = "inbound_messages"

    channel: str = Field(primary_key=True)
    message_id: str = Field(primary_key=True)
    received_at: datetime = Field(sa_type=UtcDateTime)


class PendingUpdateRow(SQLModel, table=True):
    """Telegram updates accepted by a webhook and not yet handled, kept in order per chat.

    Any replica may have accepted one; whichever holds the chat's lock handles them by update_id.
    """

    __tablename__ = "pending_updates"
    __table_args__ = (Index("ix_pending_updates_chat", "chat_hash", "update_id"),)

    update_id: int = Field(primary_key=True, sa_type=BigInteger)
    chat_id: str = Field(sa_type=EncryptedText)
    chat_hash: str = Field(sa_type=KeyedHash)
    body: str = Field(sa_type=EncryptedText)  # the update's JSON: the customer's words
    received_at: datetime = Field(sa_type=UtcDateTime)


class SavedLineRow(SQLModel, table=True):
    __tablename__ = "saved_lines"
    __table_args__ = (UniqueConstraint("customer_id", "msisdn_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    msisdn: str = Field(sa_type=EncryptedText)
    msisdn_hash: str = Field(sa_type=KeyedHash)
    owner_name: str = Field(sa_type=EncryptedText)
    doc_type: str
    doc_number: str = Field(sa_type=EncryptedText)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"

    customer_id: int = Field(primary_key=True, foreign_key="customers.id")
    state: str = Field(sa_type=EncryptedText)  # JSON from dump_session: it can hold a draft line
    updated_at: datetime = Field(sa_type=UtcDateTime)


class HandoffNoteRow(SQLModel, table=True):
    """A message of a chat handed to a person: what the customer wrote (from the one that asked
    for a person, ``opens``) and what the person answered. Erased with the customer's data."""

    __tablename__ = "handoff_notes"
    __table_args__ = (Index("ix_handoff_notes_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    sender: str  # "customer" or "person"
    opens: bool = False
    body: str = Field(sa_type=EncryptedText)  # the customer's words
    at: datetime = Field(sa_type=UtcDateTime)


class OrderRow(SQLModel, table=True):
    """An order with a snapshot of what was bought, so later catalogue changes cannot alter it."""

    __tablename__ = "orders"
    # A customer's orders by state, newest first: the chat's load reads its latest completed one
    # for every message. With an index on customer_id alone SQLite chose ix_orders_state, and read
    # every completed order of every customer per message (bench/: 6.8 ms at 10,000 purchases).
    __table_args__ = (
        Index("ix_orders_customer_state", "customer_id", "state", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    channel: str
    chat_id: str = Field(sa_type=EncryptedText)
    msisdn: str = Field(sa_type=EncryptedText)
    # Kept when the order is anonymised: the per-recipient daily limits count by it.
    msisdn_hash: str = Field(sa_type=KeyedHash, index=True)
    owner_name: str = Field(sa_type=EncryptedText)
    doc_type: str
    doc_number: str = Field(sa_type=EncryptedText)
    product_code: str
    product_kind: str
    product_name: str
    product_details: str = ""
    validity_days: int
    operator_id: int | None = None  # a package's bundle operator at the provider
    face_cents: int | None = None  # and the fixed amount sent to it
    amount_cents: int
    currency: str = "pen"
    state: str = Field(index=True)
    checkout_session_id: str | None = Field(default=None, index=True)
    checkout_url: str | None = None
    checkout_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    payment_ref: str | None = None
    operation_id: str | None = None
    failure: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    refund_after: datetime | None = Field(default=None, sa_type=UtcDateTime)
    notified_state: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ProcessedEventRow(SQLModel, table=True):
    """A payment webhook event already applied; its primary key makes replays harmless."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True)
    order_id: str = Field(foreign_key="orders.id")
    processed_at: datetime = Field(sa_type=UtcDateTime)


class AuditRow(SQLModel, table=True):
    """Who did or tried what, when: admin commands, operator actions and refused attempts."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(sa_type=EncryptedText)  # e.g. "telegram:123456789"
    action: str  # e.g. "stats", "erase", "retention"
    target: str | None = None  # never personal data: an order id, a count
    allowed: bool
    at: datetime = Field(sa_type=UtcDateTime, index=True)


class CampaignRow(SQLModel, table=True):
    """A promo broadcast: its content, channels and audience filter (see storage.campaigns)."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_type=Text)
    image_url: str | None = None
    channels: str  # comma-separated channel names
    inactive_days: int | None = None  # only customers with no completed order in N days
    recharged_only: bool = False  # only customers with at least one completed order
    template_sid: str | None = None  # WhatsApp Content API template, outside the 24-hour window
    template_vars: str | None = None  # its content variables, a JSON object
    state: str  # draft, sending, done, cancelled (a draft dropped before it went out)
    created_by: str  # "cli" or a masked admin id
    created_at: datetime = Field(sa_type=UtcDateTime)
    send_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # a draft's schedule
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CampaignRecipientRow(SQLModel, table=True):
    """One customer of a campaign and how far their promo got; written before and after sending."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),  # nobody is in an audience twice
        Index("ix_campaign_recipients_progress", "campaign_id", "state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    customer_id: int = Field(foreign_key="customers.id")
    state: str  # pending, sending, sent, failed, blocked, opted_out, skipped, unknown
    updated_at: datetime = Field(sa_type=UtcDateTime)


class CataloguePackageRow(SQLModel, table=True):
    """A package the provider sells (written by ``catalogue sync``) and how operators show it."""

    __tablename__ = "catalogue_packages"

    code: str = Field(primary_key=True)  # from the provider's operator and description
    operator_id: int
    operator_name: str
    face_cents: int  # the provider's fixed amount in soles
    description: str  # the provider's
    available: bool = True  # False once the provider no longer lists it
    price_cents: int  # what the customer pays
    position: int  # menu order
    name: str | None = None  # the operators' customer-facing name, else the provider's
    details: str | None = None  # the operators' description, else the provider's
    hidden: bool = False
    revision: int = 0  # bumped by every change, so readers see a change at once
    updated_at: datetime = Field(sa_type=UtcDateTime)


class SandboxCheckoutRow(SQLModel, table=True):
    """What happened to a sandbox checkout (paid or expired), so a restart keeps it."""

    __tablename__ = "sandbox_checkouts"

    session_id: str = Field(primary_key=True)
    state: str  # paid, expired
    card_brand: str | None = None
    at: datetime = Field(sa_type=UtcDateTime)


class OrderEventRow(SQLModel, table=True):
    """One state an order reached, when and why: the operators' timeline (written with the move)."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id")
    state: str
    cause: str | None = None  # a webhook event id, a provider's refusal code, an operator action
    at: datetime = Field(sa_type=UtcDateTime)


class OperatorRow(SQLModel, table=True):
    """A person who may sign in to the web console (bot.admin); disabled ones keep their row."""

    __tablename__ = "operators"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)  # their login, lower case; staff, not customers
    role: str  # "admin" or "agent"
    password_hash: str  # argon2id, with its parameters and salt
    created_at: datetime = Field(sa_type=UtcDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxRow(SQLModel, table=True):
    """A message to a customer, from the transaction that produced it until the vendor took it.

    ``state``: pending (due; ``next_attempt_at`` for the worker after a restart), waiting (for
    the customer to write), sent (``vendor_id`` set), delivered / read / failed / undelivered (the
    vendor's later reports), refused (never to go, ``error`` says why).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_chat", "chat_hash", "state", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)  # the order messages go in
    message_id: str = Field(unique=True)
    channel: str
    chat_id: str = Field(sa_type=EncryptedText)
    chat_hash: str = Field(sa_type=KeyedHash)
    reply: str = Field(sa_type=EncryptedText)  # the Reply as JSON: it may hold a name or a line
    state: str
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    vendor_id: str | None = Field(default=None, index=True)
    error: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a ``table=True`` model, for the statements built on it."""
    # SQLAlchemy's declarative mapping sets __table__; SQLModel's type hints do not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
