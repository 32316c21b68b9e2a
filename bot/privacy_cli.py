"""``recargabot keys new|rotate`` and ``recargabot retention``: the operators' privacy chores.

Why: re-encrypting under a new key and erasing inactive customers run beside the serving bot,
in short transactions, so neither needs downtime.

Rotation with DATA_ENCRYPTION_KEYS: put the new key first, restart the bot (it then writes with
the new key and still reads the old), run ``keys rotate``, then remove the old key. With the
demo's local key file, ``keys rotate`` adds the new key itself and retires the old ones once
every row is rotated (stop the demo first: it holds the keys it started with).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.app import data_keys, data_keys_path
from bot.settings import Settings
from storage.crypto import RotationReport, new_fernet_key, rotate_all, save_local_keys
from storage.db import make_engine, make_sessionmaker
from storage.privacy import ENCRYPTED_COLUMNS, SqlAudit, SqlPrivacy

OPERATOR = "cli"


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print a fresh key (``new``) or re-encrypt every row with the newest key (``rotate``)."""
    if args.action == "new":
        print(new_fernet_key())
        return 0
    report = asyncio.run(rotate(settings))
    print(f"{report.rotated} valores re-cifrados; {report.unreadable} ilegibles.")
    return 1 if report.unreadable else 0


async def rotate(settings: Settings, *, batch: int = 200) -> RotationReport:
    """Re-encrypt every encrypted value with the newest key; audit it."""
    local = settings.data_encryption_keys is None
    keys = data_keys(settings)
    if local:  # the demo's file: add a key now, retire the old ones after
        keys = replace(keys, fernet_keys=(new_fernet_key(), *keys.fernet_keys))
        save_local_keys(data_keys_path(settings), keys)
    engine = make_engine(settings.database_url, keys=keys)
    try:
        report = await rotate_all(engine, ENCRYPTED_COLUMNS, batch=batch)
        await SqlAudit(make_sessionmaker(engine)).record(
            actor=OPERATOR, action="keys_rotate", allowed=True, at=datetime.now(UTC),
            target=f"rotated={report.rotated} unreadable={report.unreadable}",
        )  # fmt: skip
    finally:
        await engine.dispose()
    if local and not report.unreadable:
        save_local_keys(data_keys_path(settings), replace(keys, fernet_keys=keys.fernet_keys[:1]))
    return report


def retention_command(_: argparse.Namespace, settings: Settings) -> int:
    """Erase the personal data of customers inactive for longer than RETENTION_DAYS."""
    erased = asyncio.run(purge_inactive(settings, now=datetime.now(UTC)))
    print(f"{erased} clientes inactivos borrados.")
    return 0


async def purge_inactive(settings: Settings, *, now: datetime) -> int:
    """Run the retention job once at ``now``; audit it."""
    engine = make_engine(settings.database_url, keys=data_keys(settings))
    sessions = make_sessionmaker(engine)
    try:
        before = now - timedelta(days=settings.retention_days)
        erased = await SqlPrivacy(sessions).erase_inactive(before=before, now=now)
        await SqlAudit(sessions).record(
            actor=OPERATOR, action="retention", allowed=True, at=now, target=f"erased={erased}"
        )
    finally:
        await engine.dispose()
    return erased


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``keys`` and ``retention``."""
    keys = commands.add_parser("keys", help="claves de cifrado de los datos personales")
    actions = keys.add_subparsers(dest="action", required=True)
    actions.add_parser("new", help="muestra una clave Fernet nueva")
    actions.add_parser("rotate", help="re-cifra todos los datos con la clave más nueva")
    commands.add_parser("retention", help="borra los datos de clientes inactivos")
