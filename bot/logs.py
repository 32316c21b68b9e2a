"""Logging for operators: configured once, every line scrubbed of personal numbers on its way out.

Our own log calls mask what they name (``conversations.masking``); the formatters here are the net
under them, for what they cannot foresee: a vendor's error message or a traceback quoting a phone,
document or card number. They scrub the finished line, so a record's arguments stay as its
formatter expects them (uvicorn's access lines read theirs by position).
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter

from conversations.masking import scrub

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Scrubbed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class ScrubbingFormatter(_Scrubbed):
    """A plain formatter whose lines, tracebacks included, have their digit runs masked."""


class ScrubbingDefaultFormatter(_Scrubbed, DefaultFormatter):
    """Uvicorn's server lines, scrubbed."""


class ScrubbingAccessFormatter(_Scrubbed, AccessFormatter):
    """Uvicorn's request lines, scrubbed (a query string can carry a number)."""


def configure(level: int | str, fmt: str = FORMAT) -> None:
    """Log to stderr through the scrubbing formatter; keep httpx's per-request lines out."""
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(ScrubbingFormatter(fmt))
    logging.getLogger("httpx").setLevel(logging.WARNING)


def uvicorn_config() -> dict[str, Any]:
    """Uvicorn's own logging (its handlers do not reach ours), scrubbed the same way."""
    scrubbing = {"default": ScrubbingDefaultFormatter, "access": ScrubbingAccessFormatter}
    formatters = {
        name: {**given, "()": scrubbing[name]}
        for name, given in LOGGING_CONFIG["formatters"].items()
    }
    return {**LOGGING_CONFIG, "formatters": formatters}
