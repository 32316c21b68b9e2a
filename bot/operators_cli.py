"""``recargabot operators add|list|disable|reset-password``: who may sign in to /admin.

Passwords are never taken from the command line (it shows in ``ps`` and the shell's history):
asked twice on a terminal, or read as the first line of standard input in scripts. Every change
is written to the audit log as done by "cli".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from bot.admin.security import hash_password
from bot.app import data_keys
from bot.settings import Settings
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.operators import OperatorExists, Role, SqlOperators
from storage.privacy import SqlAudit


def add_parser(commands: Any) -> None:
    """Add ``operators`` and its subcommands to the ``recargabot`` parser."""
    operators = commands.add_parser("operators", help="cuentas de la consola web (/admin)")
    sub = operators.add_subparsers(dest="operators_command", required=True)
    add = sub.add_parser("add", help="crea una cuenta (la contraseña se pide, no va en la línea)")
    add.add_argument("email")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    sub.add_parser("list", help="las cuentas y su estado")
    sub.add_parser("disable", help="impide que la cuenta ingrese").add_argument("email")
    sub.add_parser("reset-password", help="cambia la contraseña").add_argument("email")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``operators`` subcommand; the exit status."""
    try:
        return asyncio.run(_run(args, settings))
    except (ValueError, OperatorExists) as error:
        message = f"ya existe la cuenta {error}" if isinstance(error, OperatorExists) else error
        print(f"error: {message}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url, keys=data_keys(settings))
    try:
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        operators, audit = SqlOperators(sessions), SqlAudit(sessions)
        now = datetime.now(UTC)
        match args.operators_command:
            case "add":
                password = hash_password(_password())
                made = await operators.add(
                    args.email, role=Role(args.role), password_hash=password, at=now
                )
                print(f"cuenta creada: {made.email} ({made.role.value})")
            case "list":
                for operator in await operators.all():
                    state = "desactivada" if operator.disabled else "activa"
                    print(f"{operator.email}\t{operator.role.value}\t{state}")
                return 0
            case "disable":
                _done(await operators.disable(args.email, at=now), "cuenta desactivada")
            case "reset-password":
                changed = await operators.set_password(args.email, hash_password(_password()))
                _done(changed, "contraseña cambiada")
        await audit.record(actor="cli", action=f"operators_{args.operators_command}",
                           allowed=True, at=now)  # fmt: skip
        return 0
    finally:
        await engine.dispose()


def _password() -> str:
    """Ask twice on a terminal; otherwise the first line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Contraseña: ")
    if getpass.getpass("Repítela: ") != first:
        raise ValueError("las contraseñas no coinciden")
    return first


def _done(changed: bool, message: str) -> None:
    if not changed:
        raise ValueError("no hay una cuenta activa con ese correo")
    print(message)
