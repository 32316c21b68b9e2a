"""Channel-neutral replies and every Spanish (es-PE) text the customer reads.

A Reply is text, optional options (id + label) and an optional URL button; each messenger renders
them its own way (inline keyboard, numbered list, list picker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone

from conversations.catalog import MAX_CUSTOM_SOLES, MIN_CUSTOM_SOLES, display_msisdn, soles
from conversations.model import (
    DocType,
    Line,
    Order,
    PersonalData,
    Product,
    ProductKind,
    Purchase,
)


@dataclass(frozen=True)
class Option:
    id: str
    label: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = ()
    link: Link | None = None
    # False for promos and other messages an opted-out customer (BAJA / STOP) must not get.
    essential: bool = True
    # Offer to share the customer's own number in one tap, where the channel can (Telegram).
    ask_contact: bool = False


DOC_LABELS = {DocType.DNI: "DNI", DocType.CE: "Carné de Extranjería", DocType.PASSPORT: "Pasaporte"}
_DOC_RULES = {
    DocType.DNI: "8 dígitos (por ejemplo 45678912)",
    DocType.CE: "de 9 a 12 dígitos",
    DocType.PASSPORT: "de 6 a 12 letras y números",
}
_CUSTOM_RANGE = f"{soles(MIN_CUSTOM_SOLES * 100)} a {soles(MAX_CUSTOM_SOLES * 100)}"
_NO_CARD_HERE = "Nunca escribas los datos de tu tarjeta en este chat."

PRIVACY_NOTICE = (
    "Para recargar te pediré el número, el nombre del titular y su documento. Los usamos solo "
    "para tus recargas, los protegemos según la Ley 29733 y puedes pedir que los borremos "
    "cuando quieras. ¿Aceptas?"
)


def welcome_new(options: Sequence[Option]) -> Reply:
    return Reply(
        "¡Hola! Soy RecargaBot 👋 Recargo tu línea Claro prepago en minutos, pagando con "
        f"Visa o Mastercard.\n\n{PRIVACY_NOTICE}",
        tuple(options),
    )


def consent_again(options: Sequence[Option]) -> Reply:
    return Reply("Para continuar necesito tu respuesta al aviso de privacidad.", tuple(options))


def declined() -> Reply:
    return Reply(
        "Entendido, no guardé ningún dato tuyo. Si cambias de opinión, escríbeme cuando quieras."
    )


def welcome_back(options: Sequence[Option]) -> Reply:
    return Reply("¡Hola de nuevo! 👋 ¿Qué recargamos hoy?", tuple(options))


def ask_number() -> Reply:
    return Reply(
        "¿Qué número Claro quieres recargar? Escribe sus 9 dígitos, por ejemplo 987 654 321.",
        ask_contact=True,
    )


def bad_number() -> Reply:
    return Reply(
        "Ese número no parece un celular peruano. Debe tener 9 dígitos y empezar con 9, "
        "por ejemplo 987 654 321."
    )


def not_claro(msisdn: str) -> Reply:
    return Reply(
        f"La línea {display_msisdn(msisdn)} no pertenece a Claro. Solo recargamos líneas Claro "
        "prepago. Escribe otro número."
    )


def checking_number() -> Reply:
    return Reply("Un momento, estoy verificando el número…")


def ask_name() -> Reply:
    return Reply("¿A nombre de quién está la línea? Escribe el nombre completo del titular.")


def bad_name() -> Reply:
    return Reply(
        "No pude leer ese nombre. Escríbelo solo con letras y espacios, de 2 a 60 caracteres "
        "(por ejemplo María Quispe)."
    )


def ask_doc_type(options: Sequence[Option]) -> Reply:
    return Reply("¿Qué documento de identidad tiene el titular?", tuple(options))


def ask_doc_number(doc_type: DocType) -> Reply:
    return Reply(f"Escribe el número de {DOC_LABELS[doc_type]}: {_DOC_RULES[doc_type]}.")


def bad_doc_number(doc_type: DocType) -> Reply:
    return Reply(
        f"Ese número de {DOC_LABELS[doc_type]} no es válido. Debe tener {_DOC_RULES[doc_type]}."
    )


def ask_kind(msisdn: str, options: Sequence[Option], *, saved: bool = False) -> Reply:
    intro = "Guardé la línea para tus próximas recargas. " if saved else ""
    return Reply(f"{intro}¿Qué quieres comprar para el {display_msisdn(msisdn)}?", tuple(options))


def ask_amount(options: Sequence[Option]) -> Reply:
    return Reply("Elige el monto de tu recarga:", tuple(options))


def ask_custom_amount() -> Reply:
    return Reply(f"Escribe el monto en soles enteros, de {_CUSTOM_RANGE} (por ejemplo 25).")


def bad_amount() -> Reply:
    return Reply(
        f"Ese monto no es válido. Escribe soles enteros, sin céntimos, de {_CUSTOM_RANGE} "
        "(por ejemplo 25)."
    )


def ask_package(options: Sequence[Option]) -> Reply:
    return Reply("Elige tu paquete (precios con IGV incluido):", tuple(options))


def package_gone() -> Reply:
    return Reply("Ese paquete ya no está disponible. Elige otro producto, por favor.")


def product_label(product: Product) -> str:
    """How a package reads in a menu: name, price, what it gives and for how long."""
    details = f" · {product.details}" if product.details else ""
    return f"{product.name} {soles(product.price_cents)}{details} ({product.validity_days} días)"


def summary(purchase: Purchase, options: Sequence[Option]) -> Reply:
    line, product = purchase.line, purchase.product
    return Reply(
        "Revisa tu compra:\n"
        f"📱 Número: {display_msisdn(line.msisdn)}\n"
        f"👤 Titular: {line.owner_name} ({DOC_LABELS[line.doc_type]} {line.doc_number})\n"
        f"🎁 Producto: {product.name}{f' ({product.details})' if product.details else ''}\n"
        f"💰 Total: {soles(product.price_cents)} (IGV incluido)\n"
        f"📅 Vigencia: {product.validity_days} días\n\n¿Confirmas?",
        tuple(options),
    )


def ask_change(options: Sequence[Option]) -> Reply:
    return Reply("¿Qué quieres cambiar?", tuple(options))


def bad_choice(options: Sequence[Option]) -> Reply:
    return Reply("No entendí. Elige una opción, con su número o su nombre:", tuple(options))


def payment_link(amount_cents: int, url: str) -> Reply:
    return Reply(
        f"¡Listo! Paga {soles(amount_cents)} con Visa o Mastercard en esta página segura. "
        f"El enlace vence en 30 minutos.\n{_NO_CARD_HERE}",
        link=Link(f"Pagar {soles(amount_cents)}", url),
    )


def payment_pending(amount_cents: int, url: str | None) -> Reply:
    if url is None:
        return Reply("Estoy generando tu enlace de pago, un momento…")
    return Reply(
        f"Tu enlace para pagar {soles(amount_cents)} sigue activo. Si ya pagaste, espera un "
        "momento: te aviso apenas se acredite. Para anular, escribe /cancelar.",
        link=Link(f"Pagar {soles(amount_cents)}", url),
    )


def checkout_failed(options: Sequence[Option]) -> Reply:
    return Reply(
        "No pude generar el enlace de pago en este momento. Inténtalo de nuevo en unos minutos.",
        tuple(options),
    )


def cancelled() -> Reply:
    return Reply(
        "Listo, cancelé la operación y no se realizó ningún cargo. "
        "Escríbeme cuando quieras recargar."
    )


def help_text() -> Reply:
    return Reply(
        "Te ayudo a recargar tu línea Claro prepago con Visa o Mastercard.\n"
        "• recargar o /recargar: empezar una recarga\n"
        "• cancelar o /cancelar: anular lo que estás haciendo\n"
        "• ayuda o /ayuda: ver esta ayuda\n"
        "• mis recargas o /misrecargas: ver tus últimas recargas\n"
        "• mis datos o /misdatos: ver tus datos; /borrar: borrarlos\n"
        f"El pago se hace solo en la página segura del enlace. {_NO_CARD_HERE}"
    )


def opted_out() -> Reply:
    return Reply(
        "Listo, ya no te enviaré promociones ni avisos que no sean de tus recargas. "
        "Si me escribes, te sigo atendiendo. Para volver a recibirlos, escribe ALTA."
    )


def opted_in() -> Reply:
    return Reply("¡Listo! Volverás a recibir nuestras novedades. Para dejarlas, escribe BAJA.")


def ask_promos(options: Sequence[Option]) -> Reply:
    """The one-time promo question, asked after the first successful recharge."""
    return Reply(
        "¿Quieres recibir por este chat promociones y recordatorios para que tu línea no se "
        "quede sin saldo? Puedes cambiarlo cuando quieras.",
        tuple(options),
    )


def promos_on() -> Reply:
    return Reply(
        "¡Listo! Te enviaremos promociones de vez en cuando. Para dejarlas, escribe «promos no»."
    )


def promos_off() -> Reply:
    return Reply(
        "Entendido, no te enviaremos promociones. Si cambias de opinión, escribe «promos si»."
    )


def promos_usage() -> Reply:
    return Reply("Escribe «promos si» para recibir promociones o «promos no» para dejarlas.")


def settled(order: Order) -> Reply:
    """Tell the customer how their order ended."""
    number = display_msisdn(order.purchase.line.msisdn)
    product = order.purchase.product
    match order.state.value:
        case "completed":
            what = (
                f"el {product.name} ({soles(product.price_cents)})"
                if product.kind is ProductKind.PACKAGE
                else f"una recarga de {soles(product.price_cents)}"
            )
            return Reply(
                f"✅ ¡Recarga exitosa! Tu línea {number} recibió {what}. "
                f"N.º de operación: {order.operation_id}. ¡Gracias por usar RecargaBot!"
            )
        case "refunded":
            return Reply(
                f"No pudimos recargar la línea {number}. Ya devolvimos "
                f"{soles(product.price_cents)} a tu tarjeta; el extorno puede tardar hasta "
                "24 horas en verse. Disculpa las molestias."
            )
        case _:
            return Reply(
                f"Tu enlace de pago de {soles(product.price_cents)} venció y no se realizó ningún "
                "cargo. Escribe «recargar» cuando quieras intentarlo de nuevo."
            )


LIMA = timezone(timedelta(hours=-5), "PET")  # Peru keeps UTC-5 all year
_STATE_WORDS = {
    "awaiting_payment": "pendiente de pago",
    "paid": "pagada, en proceso",
    "topping_up": "en proceso",
    "topup_unknown": "en proceso",
    "held": "en proceso",
    "completed": "exitosa",
    "topup_failed": "fallida, en devolución",
    "refunded": "devuelta a tu tarjeta",
    "expired": "enlace vencido, sin cargo",
    "cancelled": "cancelada, sin cargo",
    "flagged": "en revisión",
}


def history(orders: Sequence[Order]) -> Reply:
    """List the customer's latest orders: date (Lima), number, product, amount and status."""
    if not orders:
        return Reply("Aún no tienes recargas. Escribe «recargar» para hacer la primera.")
    lines = [
        f"• {order.created_at.astimezone(LIMA):%d/%m/%Y} · "
        f"{display_msisdn(order.purchase.line.msisdn)} · {order.purchase.product.name} · "
        f"{soles(order.amount_cents)} · {_STATE_WORDS.get(order.state.value, 'en proceso')}"
        for order in orders
    ]
    return Reply("Tus últimas recargas:\n" + "\n".join(lines))


def saved_line_label(line: Line) -> str:
    return f"Recargar {display_msisdn(line.msisdn)}"


def repeat_label(purchase: Purchase) -> str:
    amount, number = soles(purchase.product.price_cents), display_msisdn(purchase.line.msisdn)
    return f"Repetir última recarga ({amount} al {number})"


# ---------------------------------------------------------------- privacy and limits


def my_data(data: PersonalData) -> Reply:
    """Show the customer what the bot keeps about them (documents masked)."""
    if data.consent_version is None and not data.lines and not data.orders:
        return Reply("No guardo ningún dato personal tuyo.")
    when = f" el {data.consented_at.astimezone(LIMA):%d/%m/%Y}" if data.consented_at else ""
    consent = f"Aceptaste el aviso de privacidad (versión {data.consent_version}){when}."
    rows = [
        f"• {display_msisdn(ln.msisdn)} · {ln.owner_name} · {DOC_LABELS[ln.doc_type]} "
        f"****{ln.doc_number[-4:]}"
        for ln in data.lines
    ]
    saved = "Líneas guardadas:\n" + "\n".join(rows) if rows else "No tienes líneas guardadas."
    return Reply(
        f"Tus datos:\n{consent if data.consent_version else 'Sin consentimiento registrado.'}\n"
        f"{saved}\nPedidos con tus datos: {data.orders}.\n"
        "Para borrarlos escribe /borrar."
    )


def confirm_erase(options: Sequence[Option]) -> Reply:
    return Reply(
        "¿Borro tus datos personales (líneas guardadas, nombres, documentos y tu aceptación del "
        "aviso)? Tus pedidos quedan solo como registro contable, sin datos personales.",
        tuple(options),
    )


def erased() -> Reply:
    return Reply("Listo, borré tus datos personales. Si vuelves a escribirme, empezamos de cero.")


def erase_kept() -> Reply:
    return Reply("De acuerdo, no borré nada.")


def card_in_chat(pending_url: str | None) -> Reply:
    """Warn a customer who typed a card number; it was neither stored nor read."""
    text = (
        "⚠️ Parece que escribiste un número de tarjeta. No lo guardé. Por tu seguridad, "
        "nunca escribas los datos de tu tarjeta en el chat: paga solo en la página segura "
        "del enlace de pago."
    )
    return Reply(text, link=Link("Ir a la página de pago", pending_url) if pending_url else None)


def too_many_messages() -> Reply:
    return Reply("Estás enviando muchos mensajes seguidos. Espera un minuto y vuelve a escribirme.")


def limit_reached(reason: str) -> Reply:
    """Refuse a new payment link politely; nothing was charged."""
    if reason == "recipient":
        why = "Ese número ya alcanzó el máximo de recargas por hoy"
    else:
        why = "Ya pediste varios enlaces de pago hace poco"
    return Reply(
        f"{why}. Por seguridad no generé otro enlace; inténtalo más tarde. No se hizo ningún cargo."
    )
