"""Point 2: key rotation while the bot serves; a tampered ciphertext is reported, not a crash."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.app import Overrides, build, data_keys_path
from bot.privacy_cli import rotate
from bot.settings import Settings
from conversations.model import Channel, ChatKey
from storage.crypto import (
    UNREADABLE,
    DataKeys,
    EncryptedText,
    WrongDataKeys,
    local_keys,
    new_fernet_key,
)
from storage.privacy import ENCRYPTED_COLUMNS
from tests.privacy.canary import NAME, NEW_CUSTOMER
from tests.service.chat import Customer

HASH_KEY = "h" * 64


def with_keys(settings, *fernet_keys: str):
    return settings.model_copy(
        update={
            "data_encryption_keys": SecretStr(",".join(fernet_keys)),
            "data_hash_key": SecretStr(HASH_KEY),
        }
    )


async def raw_tokens(engine) -> list[str]:
    """Every stored value of every encrypted column, as written."""
    tokens = []
    async with engine.connect() as connection:
        for c in ENCRYPTED_COLUMNS:
            rows = await connection.execute(text(f"SELECT {c.column} FROM {c.table}"))
            tokens += [row[0] for row in rows if row[0] is not None]
    return tokens


async def serve(settings, clock, messenger, chats: range, *texts: str) -> None:
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        for n in chats:
            customer = Customer(services, messenger, ChatKey(Channel.TERMINAL, f"c{n}"))
            await customer.say(*texts)
            if customer.messenger.sent[customer.key][-1].link:
                await customer.pay()


async def test_rotation_under_traffic_leaves_every_row_readable_with_the_new_key_only(
    settings, clock, messenger
):
    old, new = new_fernet_key(), new_fernet_key()
    await serve(with_keys(settings, old), clock, messenger, range(12), *NEW_CUSTOMER, "Confirmar")
    both = with_keys(settings, new, old)  # step 1: every process gets the new key first

    traffic = serve(both, clock, messenger, range(12, 24), *NEW_CUSTOMER, "Confirmar")
    report, _ = await asyncio.gather(rotate(both, batch=5), traffic)  # step 2, while serving

    app = build(with_keys(settings, new))  # step 3: the old key is gone
    engine = app.state.services.engine
    tokens = await raw_tokens(engine)
    opened = [Fernet(new.encode()).decrypt(t.encode()) for t in tokens]
    await engine.dispose()
    assert report.unreadable == 0 and report.rotated > 12 * 5
    assert len(opened) == len(tokens) > 24 * 5  # all rows, including those written meanwhile


async def test_a_tampered_ciphertext_is_reported_and_the_chat_goes_on(
    settings, clock, messenger, caplog
):
    keys = with_keys(settings, new_fernet_key())
    app = build(keys, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        customer = Customer(services, messenger, ChatKey(Channel.TERMINAL, "c1"))
        await customer.say(*NEW_CUSTOMER, "Confirmar")
        await customer.pay()
        async with services.engine.begin() as connection:
            await connection.execute(text("UPDATE saved_lines SET owner_name = 'gAAAAAforged'"))
            await connection.execute(text("UPDATE conversations SET state = 'gAAAAAforged'"))

        with caplog.at_level(logging.ERROR):
            replies = await customer.say("hola")
            data = await services.privacy.personal_data(customer.key)
        report = await rotate(keys)

    assert replies  # the bot answered
    assert data.lines[0].owner_name == UNREADABLE
    assert any("ALERT unreadable encrypted value" in r.getMessage() for r in caplog.records)
    assert report.unreadable == 1  # the line; "hola" rewrote the state with a sound token
    assert all("forged" not in r.getMessage() for r in caplog.records)


def test_generated_keys_are_distinct_and_a_value_round_trips():
    keys = DataKeys.generate()

    token = keys.encrypt("987654321")

    assert keys.decrypt(token) == "987654321" and "987654321" not in token
    assert keys.digest("987654321") == keys.digest("987654321") != keys.digest("987654322")
    assert DataKeys.generate() != keys


async def test_demo_rotation_replaces_the_local_key_and_keeps_rows_readable(
    settings, clock, messenger
):
    await serve(settings, clock, messenger, range(2), *NEW_CUSTOMER, "Confirmar")
    path = data_keys_path(settings)
    before = local_keys(path)

    report = await rotate(settings)
    after = local_keys(path)
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        data = await services.privacy.personal_data(ChatKey(Channel.TERMINAL, "c0"))

    assert report.rotated > 0 and report.unreadable == 0
    assert len(after.fernet_keys) == 1 and after.fernet_keys[0] not in before.fernet_keys
    assert after.hash_key == before.hash_key  # lookups keep working
    assert data.lines[0].owner_name == NAME


def test_settings_refuse_a_bad_key_without_quoting_any_secret():
    with pytest.raises(ValidationError) as refused:
        Settings(
            _env_file=None, data_encryption_keys="not-a-fernet-key-at-all", data_hash_key=HASH_KEY
        )

    assert "not a Fernet key" in str(refused.value)
    assert "not-a-fernet" not in str(refused.value) and "hhhh" not in str(refused.value)


@pytest.mark.parametrize("wrong", ["fernet", "hash"])
async def test_keys_that_do_not_open_the_database_stop_the_start(settings, clock, messenger, wrong):
    """Fresh keys on a used database (the demo run from another folder) would lose everyone."""
    first = with_keys(settings, new_fernet_key())
    app = build(first, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        await Customer(services, messenger).say("hola", "Acepto")
    changed = {"fernet": {"data_encryption_keys": SecretStr(new_fernet_key())},
               "hash": {"data_hash_key": SecretStr("x" * 64)}}[wrong]  # fmt: skip

    app = build(first.model_copy(update=changed), overrides=Overrides(clock=clock))
    with pytest.raises(WrongDataKeys, match="DATA_"):
        async with app.state.services.lifetime(background=False):
            pass


def test_processes_starting_together_agree_on_one_local_key_file(tmp_path):
    """Replicas started at once must not each make (or half-read) their own keys."""
    path = tmp_path / "keys" / "data-keys.json"

    with ThreadPoolExecutor(max_workers=16) as pool:
        found = list(pool.map(lambda _: local_keys(path), range(64)))

    assert len(set(found)) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["data-keys.json"]  # no drafts left


def test_rotation_covers_every_encrypted_column_of_the_models():
    """A new encrypted column left out of rotation would become unreadable with the old key."""
    encrypted = {
        (table.name, column.name)
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    }

    assert {(c.table, c.column) for c in ENCRYPTED_COLUMNS} == encrypted


async def test_the_right_keys_still_start_after_the_first_customer_erased_their_data(
    settings, clock, messenger
):
    """The start-up check reads one customer row: an erased one holds only placeholders."""
    keyed = with_keys(settings, new_fernet_key())
    app = build(keyed, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        await Customer(services, messenger).say("hola", "Acepto", "/borrar", "Sí")

    app = build(keyed, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        replies = await Customer(services, messenger).say("hola")

    assert replies and "Hola" in replies[0].text
