"""Failures of the outside world, as the core understands them. Adapters raise these."""

from __future__ import annotations

from enum import StrEnum


class PaymentProviderError(Exception):
    """The payment gateway could not do what was asked; nothing was charged by this call."""


class TopUpUnknown(Exception):
    """The provider may or may not have credited the line: ask for the status, never resend."""


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # try again later with the same identifier
    PRECONDITION = "precondition"  # our side must act (e.g. an empty provider wallet): hold
    PERMANENT = "permanent"  # will never succeed: refund


class TopUpRejected(Exception):
    """The provider refused the top-up and credited nothing."""

    def __init__(self, code: str, kind: FailureKind) -> None:
        super().__init__(f"{kind}: {code}")
        self.code = code
        self.kind = kind


class NotDeliverableNow(Exception):
    """The channel may not carry this message now (WhatsApp's 24-hour window): try again later."""


class DeliveryFailed(Exception):
    """The messaging provider did not take the message; sending it again later may work."""


class WalletUnreadable(Exception):
    """The provider's balance could not be read now (the dashboard says so; nothing else waits)."""
