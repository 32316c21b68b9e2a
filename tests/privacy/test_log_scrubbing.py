"""The net under our own masking: whatever reaches the operators' log is scrubbed of numbers."""

from __future__ import annotations

import io
import logging

import pytest

from bot.logs import ScrubbingAccessFormatter, ScrubbingFormatter, uvicorn_config

ORDER_ID = "3f2a9c1e12345678b0d94e7a6c5b4a39"  # hex: digit runs inside it are not numbers


def formatted(log: logging.Logger, stream: io.StringIO) -> str:
    for handler in log.handlers:
        handler.flush()
    return stream.getvalue()


def scrubbed_logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter())
    log = logging.getLogger("tests.scrub")
    log.handlers, log.propagate, log.level = [handler], False, logging.INFO
    return log, stream


def test_a_vendor_error_quoting_a_phone_is_masked_in_message_and_traceback() -> None:
    log, stream = scrubbed_logger()

    try:
        raise RuntimeError("The 'To' number +51987654321 is not valid (DNI 45678912)")
    except RuntimeError as error:
        log.exception("send failed: %s order=%s", error, ORDER_ID)

    out = formatted(log, stream)
    assert "987654321" not in out and "45678912" not in out
    assert "+********321" in out and "*****912" in out
    assert f"order={ORDER_ID}" in out  # ids stay whole for correlation
    assert out.count("Traceback") == 1


def test_a_card_number_in_a_stack_is_masked() -> None:
    log, stream = scrubbed_logger()

    log.warning("typed 4242424242424242", stack_info=True)

    assert "4242424242424242" not in formatted(log, stream)


def test_uvicorns_request_lines_are_scrubbed_and_still_formatted() -> None:
    config = uvicorn_config()
    access = config["formatters"]["access"]
    formatter = access["()"](access["fmt"], use_colors=False)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:80", "GET", "/x?to=987654321", "1.1", 200), None,
    )  # fmt: skip

    line = formatter.format(record)

    assert formatter.__class__ is ScrubbingAccessFormatter
    assert '"GET /x?to=******321 HTTP/1.1" 200' in line


@pytest.mark.parametrize(
    ("typed", "masked"),
    [
        ("987 654 321", "*** *** 321"),
        ("987-654-321", "***-***-321"),
        ("+51 987 654 321", "+51 *** *** 321"),
        ("4242 4242 4242 4242", "**** **** **** *242"),
        ("4242-4242-4242-4242", "****-****-****-*242"),
        ("4567 8912", "**** *912"),
    ],
)
def test_numbers_written_in_groups_as_the_bot_prints_them_are_masked(typed: str, masked: str):
    log, stream = scrubbed_logger()

    log.warning("Recargar %s ahora", typed)

    assert f"Recargar {masked} ahora" in formatted(log, stream)


@pytest.mark.parametrize(
    "kept", ["2026-12-07 00:52:08,123", "S/ 10.00", "127.0.0.1:8000", "order=3f2a9c1e 12 345"]
)
def test_dates_amounts_and_addresses_stay_readable(kept: str):
    log, stream = scrubbed_logger()

    log.warning("at %s", kept)

    assert f"at {kept}" in formatted(log, stream)
