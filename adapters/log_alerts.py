"""LogAlerts: operator alerts as ERROR log lines, the one channel every deployment has.

It implements the core's ``Alerts`` port. A Telegram copy to the operators can be added beside
it once the Telegram channel exists; callers pass no personal data, only order ids and reasons.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class LogAlerts:
    """Alerts written to the log with an ``ALERT`` prefix that log monitoring can match."""

    async def alert(self, what: str, *, order_id: str | None = None) -> None:
        """Log the alert at ERROR level."""
        logger.error("ALERT %s order=%s", what, order_id or "-")
