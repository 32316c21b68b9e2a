"""What a chat's step reads: its customer, state, last purchase and saved lines in one statement,
and the session made of those rows.

Apart from ``storage.chats`` so that the inbox's delivery check (``storage.pending_updates``)
can read the same rows in its own statement, ahead of the step (``driver.read_ahead``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnClause, Select, exists, literal_column, select

from conversations.model import OrderState
from conversations.session import Profile, Session, load_session
from storage.catalogue import STAMP
from storage.customers import NEWEST_LINE_FIRST, SAVED_LINE, SAVED_LINES, lines_of, of_chat
from storage.driver import Statement
from storage.models import ConversationRow, CustomerRow, OutboxRow, table_of
from storage.orders import BOUGHT, ORDER, ORDERS, purchase_of
from storage.outbox import OWED

# In the SQL itself, not bound: PostgreSQL then plans the statement once per connection (its
# generic plan is as good as any), where bound constants had it planned again for every message.
_COMPLETED = f"'{OrderState.COMPLETED.value}'"
_OUTBOX = table_of(OutboxRow).c
_OWED: list[ColumnClause[Any]] = [literal_column(f"'{state}'") for state in OWED]


def chat_state(*also: Any) -> Select[Any]:
    """The chat's customer (id, consent, promo question), its stored state, what its latest
    completed order bought (for "Repetir última recarga"), whether it owes messages still to go
    (``owes``) and then ``also``, in a row for each of its saved lines, the newest first (one row
    without, its line columns NULL)."""
    customers, conversations = table_of(CustomerRow), table_of(ConversationRow)
    customer, conversation, done = customers.c, conversations.c, ORDERS.alias("done").c
    latest = (
        select(done.id)
        .where(done.customer_id == customer.id, done.state == literal_column(_COMPLETED))
        .order_by(done.created_at.desc(), done.id.desc())
        .limit(literal_column("1"))
        .correlate(customers)
        .scalar_subquery()
    )
    stmt = of_chat(
        customer.id,
        customer.consent_version,
        customer.promos_asked_at,
        conversation.state,
        *(ORDER[name] for name in BOUGHT),
        *(column.label(f"line_{column.key}") for column in SAVED_LINE),
        exists()
        .where(_OUTBOX.chat_hash == customer.chat_hash, _OUTBOX.state.in_(_OWED))
        .label("owes"),
        *also,
    )
    joined = (
        customers.outerjoin(conversations, conversation.customer_id == customer.id)
        .outerjoin(ORDERS, ORDER.id == latest)
        .outerjoin(SAVED_LINES, SAVED_LINES.c.customer_id == customer.id)
    )
    return stmt.select_from(joined).order_by(*NEWEST_LINE_FIRST)


CHAT_STATE = Statement(chat_state())
# What a step reads: the chat's rows and the catalogue's stamp (last), in one round trip.
CHAT_STATE_AND_STAMP = Statement(chat_state(*STAMP))


def session_of(found: list[Any]) -> Session:
    """The session of the chat's rows as ``chat_state`` reads them (none: a new chat)."""
    if not found:
        return Session()
    row: Any = found[0]  # the columns by name, as purchase_of reads an order's
    lines = lines_of(
        (r.line_msisdn, r.line_owner_name, r.line_doc_type, r.line_doc_number) for r in found
    )
    profile = Profile(
        consented=row.consent_version is not None,
        promos_asked=row.promos_asked_at is not None,
        lines=lines,
        last=purchase_of(row) if row.product_code is not None else None,
    )
    return load_session(row.state, profile)
