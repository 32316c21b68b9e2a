"""``recargabot promo send|list|status|resume``: the operators' promo campaigns from a terminal.

Readable output for people (rich tables, a progress bar while sending) and ``--json`` for
scripts: one JSON object on stdout, nothing else. A dry run draws nothing and sends nothing; it
prints the audience per channel and the message as customers will read it. An interrupted send
(Ctrl-C, a crash) is finished with ``resume ID``: nobody gets the promo twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import data_keys
from bot.promos import UsageError, audience_of, broadcaster, promo_channels, promo_of
from bot.settings import Settings
from conversations.broadcast import Promo, RecipientState
from storage.campaigns import Audience, Campaign, SqlCampaigns
from storage.customers import SqlContacts
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade


def add_parser(commands: Any) -> None:
    """Add ``promo`` and its subcommands to the ``recargabot`` parser."""
    promo = commands.add_parser("promo", help="campañas de promociones a clientes suscritos")
    sub = promo.add_subparsers(dest="promo_command", required=True)
    send = sub.add_parser("send", help="crea una campaña y la envía (o --dry-run)")
    send.add_argument("--text", required=True, help="el mensaje")
    send.add_argument("--image-url", default=None, help="una imagen (https) con el texto")
    send.add_argument("--channel", choices=["telegram", "whatsapp", "all"], default="all")
    send.add_argument("--inactive-days", type=int, default=None, help="sin recargas en N días")
    send.add_argument("--recharged", action="store_true", help="solo quien recargó alguna vez")
    send.add_argument("--whatsapp-template", default=None, help="Content SID (HX…) aprobado")
    send.add_argument("--template-vars", default=None, help='variables JSON: {"1": "…"}')
    send.add_argument("--dry-run", action="store_true", help="muestra audiencia y vista previa")
    sub.add_parser("list", help="las últimas campañas")
    for name, text in (("status", "estado de una campaña"), ("resume", "retoma un envío")):
        sub.add_parser(name, help=text).add_argument("id", type=int)
    for parser in sub.choices.values():
        parser.add_argument("--json", action="store_true", help="salida JSON para scripts")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``promo`` subcommand; the exit status."""
    try:
        return asyncio.run(_run(args, settings))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    out = Output(as_json=args.json)
    async with migrated_database(settings) as engine:
        campaigns, contacts = SqlCampaigns(make_sessionmaker(engine)), SqlContacts(engine)
        match args.promo_command:
            case "send":
                return await _send(args, settings, campaigns, contacts, out)
            case "list":
                out.campaigns(await campaigns.latest())
            case "status":
                campaign = await _existing(campaigns, args.id)
                out.status(campaign, await campaigns.tally(campaign.id))
            case "resume":
                campaign = await _existing(campaigns, args.id)
                await _deliver(settings, campaigns, contacts, campaign, out)
    return 0


@asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The database of the settings, migrated, for one command; disposed after."""
    engine = make_engine(settings.database_url, keys=data_keys(settings))
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


async def _existing(campaigns: SqlCampaigns, campaign_id: int) -> Campaign:
    campaign = await campaigns.get(campaign_id)
    if campaign is None:
        raise UsageError(f"no existe la campaña {campaign_id}")
    return campaign


async def _send(
    args: argparse.Namespace,
    settings: Settings,
    campaigns: SqlCampaigns,
    contacts: SqlContacts,
    out: Output,
) -> int:
    promo, audience = _promo(args), _audience(args, settings)
    if args.dry_run:
        out.preview(promo, await campaigns.audience_size(audience))
        return 0
    campaign_id = await campaigns.create(promo, audience, created_by="cli")
    await campaigns.start(campaign_id)
    campaign = await _existing(campaigns, campaign_id)
    await _deliver(settings, campaigns, contacts, campaign, out)
    return 0


def _promo(args: argparse.Namespace) -> Promo:
    return promo_of(args.text, args.image_url, args.whatsapp_template, args.template_vars)


def _audience(args: argparse.Namespace, settings: Settings) -> Audience:
    return audience_of(settings, args.channel, args.inactive_days, recharged=args.recharged)


async def _deliver(
    settings: Settings,
    campaigns: SqlCampaigns,
    contacts: SqlContacts,
    campaign: Campaign,
    out: Output,
) -> None:
    tally = await campaigns.tally(campaign.id)
    total = tally.get(RecipientState.PENDING.value, 0) + tally.get(RecipientState.SENDING.value, 0)
    with out.progress(total) as advance:
        async with promo_channels(settings, contacts, lambda: datetime.now(UTC)) as channels:
            sender = broadcaster(settings, campaigns, channels, on_outcome=advance)
            counts = await sender.run(campaign.id, campaign.promo)
    updated = await _existing(campaigns, campaign.id)
    out.status(updated, await campaigns.tally(campaign.id), retried=counts["retried"])


class Output:
    """Rich for people, JSON for scripts."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console()

    def preview(self, promo: Promo, sizes: dict[str, int]) -> None:
        """Show a dry run: audience per channel and the message."""
        if self.as_json:
            shown = {"text": promo.text, "image_url": promo.image_url}
            return self._json({"dry_run": True, "audience": sizes, **shown})
        table = Table("Canal", "Audiencia", title="Audiencia (suscritos y alcanzables)")
        for channel, size in sizes.items():
            table.add_row(channel, str(size))
        self.console.print(table)
        self.console.print(Panel(promo.text, title="Vista previa", expand=False))
        if promo.image_url:
            self.console.print(
                f"Con imagen (foto en Telegram, adjunta en WhatsApp): {promo.image_url}"
            )
        if promo.template_sid:
            self.console.print(f"Fuera de la ventana de 24 h: plantilla {promo.template_sid}")

    def campaigns(self, campaigns: list[Campaign]) -> None:
        """List campaigns."""
        if self.as_json:
            return self._json({"campaigns": [_summary(c) for c in campaigns]})
        table = Table("ID", "Estado", "Canales", "Creada", "Texto")
        for c in campaigns:
            channels = ",".join(ch.value for ch in c.audience.channels)
            table.add_row(str(c.id), c.state, channels, f"{c.created_at:%Y-%m-%d %H:%M}",
                          c.promo.text[:40])  # fmt: skip
        self.console.print(table)

    def status(self, campaign: Campaign, tally: dict[str, int], *, retried: int = 0) -> None:
        """Show one campaign's delivery counts."""
        counts = {state.value: tally.get(state.value, 0) for state in RecipientState}
        if self.as_json:
            return self._json({**_summary(campaign), "counts": counts, "retried_429": retried})
        table = Table("Estado", "Destinatarios", title=f"Campaña {campaign.id}: {campaign.state}")
        for state, count in counts.items():
            table.add_row(state, str(count))
        self.console.print(table)

    def progress(self, total: int) -> _ProgressBar:
        """A progress bar (none with --json); the context yields the per-outcome callback."""
        return _ProgressBar(None if self.as_json else self.console, total)

    def _json(self, data: dict[str, Any]) -> None:
        print(json.dumps(data, ensure_ascii=False, default=str))


class _ProgressBar:
    def __init__(self, console: Console | None, total: int) -> None:
        self._progress = (
            Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                     TimeRemainingColumn(), console=console)
            if console else None
        )  # fmt: skip
        self._total = total

    def __enter__(self) -> Callable[[RecipientState], None]:
        if self._progress is None:
            return lambda _state: None
        self._progress.start()
        task = self._progress.add_task("Enviando", total=self._total)
        progress = self._progress
        return lambda _state: progress.advance(task)

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id, "state": campaign.state, "text": campaign.promo.text,
        "channels": [c.value for c in campaign.audience.channels],
        "inactive_days": campaign.audience.inactive_days,
        "created_at": campaign.created_at.isoformat(),
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }  # fmt: skip
