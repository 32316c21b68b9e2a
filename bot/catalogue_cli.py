"""``recargabot catalogue sync|list|show|hide|rename|move``: the packages customers are offered.

``sync`` reads the top-up provider's Claro bundle and data packages into the database (safe any
time: it writes only what changed, and open orders keep their price). The rest are the
operators' choices over them: which are shown, in what order, under which name and description.
A change reaches customers with their next message. ``--json`` prints one JSON value for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from adapters.reloadly_topups import ReloadlyError
from bot.app import sync_catalogue, top_up_provider
from bot.promo_cli import migrated_database
from bot.settings import Settings
from conversations.catalog import soles
from conversations.packages import ListedPackage
from storage.catalogue import SqlCatalogue, SyncReport, UnknownPackage


def add_parser(commands: Any) -> None:
    """Add ``catalogue`` and its subcommands to the ``recargabot`` parser."""
    catalogue = commands.add_parser("catalogue", help="paquetes que se ofrecen a los clientes")
    sub = catalogue.add_subparsers(dest="catalogue_command", required=True)
    sub.add_parser("sync", help="lee los paquetes de Claro del proveedor de recargas")
    sub.add_parser("list", help="todos los paquetes, en el orden del menú")
    sub.add_parser("show", help="vuelve a ofrecer un paquete oculto").add_argument("code")
    sub.add_parser("hide", help="deja de ofrecer un paquete, al instante").add_argument("code")
    rename = sub.add_parser("rename", help="nombre y descripción que ven los clientes")
    rename.add_argument("code")
    rename.add_argument("--name", default=None, help="nuevo nombre ('' = el del proveedor)")
    rename.add_argument("--details", default=None, help="qué incluye ('' = lo del proveedor)")
    move = sub.add_parser("move", help="posición en el menú (1 = primero)")
    move.add_argument("code")
    move.add_argument("position", type=int)
    for parser in sub.choices.values():
        parser.add_argument("--json", action="store_true", help="salida JSON para scripts")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``catalogue`` subcommand; the exit status."""
    try:
        return asyncio.run(_run(args, settings))
    except UnknownPackage as error:
        print(f"error: no existe el paquete {error}", file=sys.stderr)
        return 2
    except (ReloadlyError, httpx.HTTPError) as error:
        print(f"error: el proveedor de recargas no respondió ({error})", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with migrated_database(settings) as engine:
        catalogue = SqlCatalogue(engine)
        match args.catalogue_command:
            case "sync":
                report = await _sync(catalogue, settings, now)
                _print(args, asdict(report), _report_text(report))
                return 0
            case "show" | "hide":
                await catalogue.hide(args.code, hidden=args.catalogue_command == "hide", at=now)
            case "rename":
                await catalogue.rename(args.code, name=args.name, details=args.details, at=now)
            case "move":
                await catalogue.move(args.code, position=args.position, at=now)
        listed = await catalogue.listing()
    if args.catalogue_command == "list":
        _print(args, [_as_json(p) for p in listed], _table(listed))
    else:
        changed = next(p for p in listed if p.code == args.code)
        _print(args, _as_json(changed), _table([changed]))
    return 0


async def _sync(catalogue: SqlCatalogue, settings: Settings, now: datetime) -> SyncReport:
    provider, close = top_up_provider(settings)
    try:
        return await sync_catalogue(catalogue, provider, at=now)
    finally:
        if close:
            await close()


def _print(args: argparse.Namespace, data: Any, readable: Any) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        Console().print(readable)


def _as_json(package: ListedPackage) -> dict[str, Any]:
    product = package.product()
    return {
        "code": package.code, "position": package.position, "name": product.name,
        "details": product.details, "validity_days": product.validity_days,
        "price_cents": product.price_cents, "operator_id": package.offer.operator_id,
        "face_cents": package.offer.face_cents, "provider_description": package.offer.description,
        "hidden": package.hidden, "available": package.available, "on_sale": package.on_sale,
    }  # fmt: skip


def _table(packages: list[ListedPackage]) -> Table:
    table = Table("#", "código", "nombre", "precio", "vigencia", "incluye", "estado")
    for package in packages:
        product = package.product()
        state = "oculto" if package.hidden else "retirado" if not package.available else "en venta"
        table.add_row(
            str(package.position), package.code, product.name, soles(product.price_cents),
            f"{product.validity_days} días" if product.validity_days else "—", product.details,
            state,
        )  # fmt: skip
    return table


def _report_text(report: SyncReport) -> str:
    return (
        f"{len(report.added)} nuevos, {len(report.changed)} cambiados, "
        f"{len(report.withdrawn)} retirados, {report.unchanged} sin cambios"
    )
