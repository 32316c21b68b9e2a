"""Point 3: arbitrary unicode at every prompt, through the real service and database.

Zero-width and right-to-left marks, 4,096-character walls, SQL and Markdown metacharacters,
card numbers: no exception, no invalid number, name, document or amount accepted into the draft,
and no reply carries control or bidi characters (replies are sent without a parse mode, so
Markdown cannot break them; what is left to check is that the customer's oddities are not echoed).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.catalog import credit_product, parse_document, parse_name
from conversations.machine import Text
from conversations.model import Channel, ChatKey, DocType, Line
from conversations.session import Draft, Payment, Session, Step

FUZZ = settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LINE = Line("987654321", "María Quispe", DocType.DNI, "45678912")
PRODUCT = credit_product(10)
AT_EACH_PROMPT = (
    Session(step=Step.CONSENT),
    Session(step=Step.PICK_LINE),
    Session(step=Step.ASK_NUMBER),
    Session(step=Step.CHECK_NUMBER, draft=Draft(msisdn="987654321")),
    Session(step=Step.ASK_NAME, draft=Draft(msisdn="987654321")),
    Session(step=Step.ASK_DOC_TYPE, draft=Draft(msisdn="987654321", owner_name="María Quispe")),
    Session(step=Step.ASK_DOC_NUMBER, draft=Draft("987654321", "María Quispe", DocType.DNI)),
    Session(step=Step.ASK_DOC_NUMBER, draft=Draft("987654321", "María Quispe", DocType.PASSPORT)),
    Session(step=Step.CHOOSE_KIND, draft=Draft.of(LINE)),
    Session(step=Step.CHOOSE_AMOUNT, draft=Draft.of(LINE)),
    Session(step=Step.ASK_AMOUNT, draft=Draft.of(LINE)),
    Session(step=Step.CHOOSE_PACKAGE, draft=Draft.of(LINE)),
    Session(step=Step.CONFIRM, draft=Draft.of(LINE, PRODUCT)),
    Session(step=Step.CHANGE, draft=Draft.of(LINE, PRODUCT)),
    Session(step=Step.CONFIRM_ERASE),
    Session(
        step=Step.AWAIT_PAYMENT,
        draft=Draft.of(LINE, PRODUCT),
        payment=Payment(1000, "ord-1", "https://bot.test/pay"),
    ),
)
ODD = "\u200b\u200c\u200d\u2060\ufeff\u202e\u202d\u200f\u061c\u0301😀ñ９'\";--*_`[]()~>#|\\%"
NASTY = (
    "'; DROP TABLE orders; --", "1' OR '1'='1", "*negrita* _cursiva_ `code` [x](http://e.vil)",
    "<b>hola</b>", "\u202eMaría Quispe", "Mar\u200bía Quispe", "9876\u200b54321",
    "４５６７８９１２",
    "x" * 4096, "9" * 4096, "4242 4242 4242 4242", "\r\nLOG INJECTED", "\x00\x1b[31m",
)  # fmt: skip
texts = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from(ODD + "0123456789 abcS/"), max_size=60),
    st.builds(lambda s, n: (s * n)[:4096], st.text(min_size=1, max_size=4), st.integers(1, 4096)),
)
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def assert_valid_draft(draft: Draft) -> None:
    assert draft.msisdn is None or re.fullmatch(r"9[0-9]{8}", draft.msisdn)
    assert draft.owner_name is None or parse_name(draft.owner_name) == draft.owner_name
    assert draft.owner_name is None or not UNSAFE.search(draft.owner_name)
    if draft.doc_number is not None:
        assert draft.doc_type and parse_document(draft.doc_type, draft.doc_number)
        assert re.fullmatch(r"[0-9A-Z]{6,12}", draft.doc_number)
    if draft.product is not None:
        assert 300 <= draft.product.price_cents <= 20_000


@given(start=st.sampled_from(AT_EACH_PROMPT), text=texts)
@FUZZ
async def test_any_text_at_any_prompt_is_handled_safely(services, messenger, clock, start, text):
    key = ChatKey(Channel.TERMINAL, "fuzz")
    await services.store.record_consent(key, version="2026-11", at=clock())
    await services.store.save(key, start)
    clock.advance(seconds=10)  # stay under the per-minute message limit
    before = len(messenger.sent[key])

    await services.chat.handle(key, Text(text))

    after = await services.store.load(key)
    replies = messenger.sent[key][before:]
    assert replies, "every message gets an answer"
    assert_valid_draft(after.draft)
    for reply in replies:
        assert not UNSAFE.search(reply.text) and len(reply.text) <= 4096
        assert text not in reply.text or len(text) < 3 or text.isalnum()
