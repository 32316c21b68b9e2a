"""Whether and how a reply may reach a customer on a channel with a service window (WhatsApp).

WhatsApp allows free-form messages only within 24 hours of the customer's last message; after
that only an approved template may be sent (Twilio 63016), or the message waits until the customer
writes again. Customers who said BAJA / STOP get no promos or other non-essential messages; what
answers their own messages and what they must know about their money (order notices) still goes.
A customer who blocked us at Twilio (21610) is unreachable: nothing is sent until they write.
The rule lives here, pure, so every messenger applies the same one and tests can read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from conversations.messages import Reply
from conversations.ports import Contact

SERVICE_WINDOW = timedelta(hours=24)


class Route(StrEnum):
    FREE_FORM = "free_form"  # a normal message: text, numbered options, link
    TEMPLATE = "template"  # the approved notification template, outside the window
    LATER = "later"  # keep it: it can only go once the customer writes again
    DROP = "drop"  # never send it (a promo to an opted-out customer)


def in_window(contact: Contact, now: datetime, window: timedelta = SERVICE_WINDOW) -> bool:
    """True while free-form messages may be sent: the customer wrote less than 24 hours ago."""
    last = contact.last_inbound_at
    return last is not None and now - last < window


def route(contact: Contact, reply: Reply, *, now: datetime, has_template: bool) -> Route:
    """Decide how ``reply`` may reach the customer now."""
    if not reply.essential and (contact.opted_out or contact.unreachable):
        return Route.DROP
    if contact.unreachable:
        return Route.LATER  # blocked (Twilio 21610): nothing goes until they write again
    if in_window(contact, now):
        return Route.FREE_FORM
    return window_closed(reply, has_template=has_template)


def window_closed(reply: Reply, *, has_template: bool) -> Route:
    """How ``reply`` may go once the window is closed (also when Twilio says so: 63016)."""
    if not reply.essential:
        return Route.DROP  # promos outside the window would need their own opt-in template
    return Route.TEMPLATE if has_template else Route.LATER
