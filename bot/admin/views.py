"""How the console shows things: Spanish labels, soles, Lima times, masked personal data, and
the data its charts and progress bar draw."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment

from conversations.broadcast import RecipientState
from conversations.catalog import soles
from conversations.masking import mask_chat, mask_document, mask_msisdn, scrub
from conversations.ports import Balance
from storage.console import LIMA, Dashboard, Figures

STATES = {
    "awaiting_payment": "Esperando pago",
    "paid": "Pagado",
    "topping_up": "Recargando",
    "topup_unknown": "Recarga sin confirmar",
    "completed": "Completado",
    "topup_failed": "Recarga fallida",
    "refunded": "Devuelto",
    "expired": "Vencido",
    "cancelled": "Cancelado",
    "flagged": "Revisar",
    "held": "Retenido",
}
ACTIONS = {
    "reveal": "Vio los datos personales",
    "retry": "Reintentó la recarga",
    "refund": "Devolvió el pago",
    "resend": "Reenvió el aviso",
    "search_phone": "Buscó por número",
    "handoff_answer": "Respondió un chat",
    "handoff_answer_back": "Respondió un chat y lo devolvió al bot",
    "handoff_back": "Devolvió un chat al bot",
    "package_hide": "Ocultó un paquete",
    "package_show": "Mostró un paquete",
    "package_rename": "Renombró un paquete",
    "package_move": "Movió un paquete",
}
OUTCOMES = {
    RecipientState.SENT: "Enviados",
    RecipientState.FAILED: "Fallidos",
    RecipientState.BLOCKED: "Bloqueados",
    RecipientState.OPTED_OUT: "Dados de baja",
    RecipientState.SKIPPED: "Omitidos",
    RecipientState.UNKNOWN: "Desconocidos",
}
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}
CAMPAIGNS = {
    "draft": "programada",
    "sending": "enviando",
    "done": "terminada",
    "cancelled": "cancelada",
}
DOCUMENTS = {"dni": "DNI", "ce": "CE", "pasaporte": "Pasaporte"}


def install(env: Environment) -> None:
    env.filters.update(
        soles=soles, lima=lima, state=lambda s: STATES.get(s, s),
        action=lambda a: ACTIONS.get(a, a), channel=lambda c: CHANNELS.get(c, c),
        doctype=lambda d: DOCUMENTS.get(d, d), campaign=lambda c: CAMPAIGNS.get(c, c),
        msisdn=mask_msisdn, document=mask_document, name=mask_name, percent=percent,
        chat=mask_chat, scrub=scrub, money=money,
    )  # fmt: skip


def money(balance: Balance) -> str:
    """A wallet's balance in its currency: ``S/ 5,000.00``, ``US$ 550.50``."""
    symbol = {"PEN": "S/", "USD": "US$"}.get(balance.currency, balance.currency)
    return f"{symbol} {balance.amount_minor // 100:,}.{balance.amount_minor % 100:02d}"


def lima(moment: datetime | None) -> str:
    return moment.astimezone(LIMA).strftime("%d/%m/%Y %H:%M:%S") if moment else "—"


def mask_name(name: str) -> str:
    """``Ana María Quispe`` -> ``A*** M*** Q***``."""
    return " ".join(f"{word[:1]}***" for word in name.split()) or "—"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def charts(board: Dashboard) -> dict[str, Any]:
    """What console.js draws: soles per day, and per channel and product over 30 days."""
    return {
        "days": _series(board.by_day),
        "channels": _series(board.month_topups, CHANNELS),
        "products": _series(board.by_product),
        "states": {
            "labels": [STATES.get(s, s) for s in board.by_state],
            "counts": list(board.by_state.values()),
        },
    }


def _series(figures: Figures, names: dict[str, str] | None = None) -> dict[str, list[Any]]:
    keys = list(figures.counts)
    return {
        "labels": [(names or {}).get(key, key) for key in keys],
        "counts": [figures.counts[key] for key in keys],
        "soles": [figures.cents[key] / 100 for key in keys],
    }


def progress(tally: dict[str, int], *, state: str, running: bool) -> dict[str, Any]:
    """The counts of a campaign and how far it got, for its progress bar."""
    total = sum(tally.values())
    done = sum(tally.get(s.value, 0) for s in OUTCOMES)
    return {
        "state": state,
        "state_label": CAMPAIGNS.get(state, state),
        "running": running,
        "total": total,
        "done": done,
        "percent": round(100 * done / total) if total else 100,
        "counts": {s.value: tally.get(s.value, 0) for s in OUTCOMES},
        "labels": {s.value: label for s, label in OUTCOMES.items()},
    }
