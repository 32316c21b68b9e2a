"""Logging for operators: configured once, every line scrubbed of personal numbers on its way out.

Our own log calls mask what they name (``conversations.masking``); this filter is the net under
them, for what they cannot foresee: a vendor's error message or a traceback quoting a phone,
document or card number.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from conversations.masking import scrub

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ScrubPersonalData(logging.Filter):
    """Mask free-standing digit runs in a record's message, traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def configure(level: int | str, fmt: str = FORMAT) -> None:
    """Log to stderr through the scrubbing filter; keep httpx's per-request lines out."""
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ScrubPersonalData())
    logging.getLogger("httpx").setLevel(logging.WARNING)


def uvicorn_config() -> dict[str, Any]:
    """Uvicorn's own logging (its handlers do not reach ours), scrubbed the same way."""
    config: dict[str, Any] = {**LOGGING_CONFIG, "filters": {"scrub": {"()": ScrubPersonalData}}}
    config["handlers"] = {
        name: {**handler, "filters": ["scrub"]}
        for name, handler in LOGGING_CONFIG["handlers"].items()
    }
    return config
