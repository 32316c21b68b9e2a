"""The package catalogue: the provider's offers (``sync``) and the operators' choices over them.

Sync writes only what changed, so running it twice changes nothing the second time; it never
touches the operators' names, descriptions, order or hiding. Orders keep a snapshot of what was
bought, so a price changed by a sync does not alter an open order.

What is on sale (``on_sale``, ``current()``) is read with the chat for every customer message:
it costs the table's row count and revisions (read with the chat's row) unless something
changed, so a ``hide`` acts on the next message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conversations.catalog import Catalogue
from conversations.packages import ListedPackage, Offer
from storage.driver import Driver, Statement, Work
from storage.models import CataloguePackageRow, table_of

_TABLE = table_of(CataloguePackageRow)
_C = _TABLE.c
# Every write bumps its row's revision: the sum changes with any edit, whatever the clock says.
# Two columns, so that another query (a chat's load) can read them with its own.
STAMP = tuple(
    select(figure).select_from(_TABLE).scalar_subquery()
    for figure in (func.count(), func.sum(_C.revision))
)
_STAMP = Statement(select(*STAMP))
_ALL = Statement(select(_TABLE).order_by(_C.position, _C.code))


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()  # no longer listed by the provider: not offered
    unchanged: int = 0


class UnknownPackage(LookupError):
    """No package has that code."""


@dataclass
class SqlCatalogue:
    engine: AsyncEngine
    _cached: tuple[Any, Catalogue] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def current(self) -> Catalogue:
        """The packages on sale, in the operators' order."""
        return await self._driver.run(self.on_sale(), write=False)

    def on_sale(self, stamp: tuple[Any, ...] | None = None) -> Work[Catalogue]:
        """``current()`` as a step of a read that takes other rows too (a chat's load), which
        may have read the table's ``STAMP`` already."""
        if stamp is None:
            stamp = tuple((yield _STAMP, {}).rows[0])
        if self._cached is not None and self._cached[0] == stamp:
            return self._cached[1]
        listed = yield from _listed()
        catalogue = Catalogue(tuple(p.product() for p in listed if p.on_sale))
        self._cached = (stamp, catalogue)
        return catalogue

    async def listing(self) -> list[ListedPackage]:
        """Every package, on sale or not, in menu order."""
        return await self._driver.run(_listed(), write=False)

    async def sync(self, offers: Sequence[Offer], *, at: datetime) -> SyncReport:
        """Bring the provider's side of the catalogue up to ``offers``, writing only changes."""
        wanted = {offer.code: offer for offer in offers}
        added, changed, withdrawn, unchanged = [], [], [], 0
        async with self.engine.begin() as db:
            # Replicas sync at start, at once: one after the other, each reading what the other
            # wrote (SQLite's writers already queue up; PostgreSQL's need the lock). Readers of
            # the menu are not held up by it.
            if db.dialect.name == "postgresql":
                await db.execute(text("LOCK TABLE catalogue_packages IN SHARE ROW EXCLUSIVE MODE"))
            rows = {row.code: row for row in (await db.execute(select(_TABLE))).all()}
            position = max((row.position for row in rows.values()), default=0)
            for code, offer in wanted.items():
                values = _provider_values(offer)
                row = rows.get(code)
                if row is None:
                    position += 1
                    await db.execute(
                        insert(_TABLE).values(code=code, position=position, updated_at=at, **values)
                    )
                    added.append(code)
                elif any(getattr(row, k) != v for k, v in values.items()) or not row.available:
                    await _update(db, code, at, available=True, **values)
                    changed.append(code)
                else:
                    unchanged += 1
            for code, row in rows.items():
                if code not in wanted and row.available:
                    await _update(db, code, at, available=False)
                    withdrawn.append(code)
        return SyncReport(tuple(added), tuple(changed), tuple(withdrawn), unchanged)

    async def hide(self, code: str, *, hidden: bool, at: datetime) -> None:
        await self._edit(code, at, hidden=hidden)

    async def rename(
        self, code: str, *, name: str | None, details: str | None, at: datetime
    ) -> None:
        """Set the customer-facing name and description; "" restores the provider's."""
        changes = {k: v or None for k, v in (("name", name), ("details", details)) if v is not None}
        await self._edit(code, at, **changes)

    async def move(self, code: str, *, position: int, at: datetime) -> None:
        await self._edit(code, at, position=position)

    async def _edit(self, code: str, at: datetime, **values: Any) -> None:
        async with self.engine.begin() as db:
            if not await _update(db, code, at, **values):
                raise UnknownPackage(code)


async def _update(db: AsyncConnection, code: str, at: datetime, **values: Any) -> bool:
    done = await db.execute(
        update(_TABLE)
        .where(_C.code == code)
        .values(revision=_C.revision + 1, updated_at=at, **values)
    )
    return done.rowcount == 1


def _listed() -> Work[list[ListedPackage]]:
    return [_package(row) for row in (yield _ALL, {}).rows]


def _provider_values(offer: Offer) -> dict[str, Any]:
    values = {
        "operator_id": offer.operator_id,
        "operator_name": offer.operator_name,
        "face_cents": offer.face_cents,
        "description": offer.description,
        "price_cents": offer.face_cents,  # sold at the provider's face value in soles
    }
    return values


def _package(row: Any) -> ListedPackage:
    offer = Offer(row.operator_id, row.operator_name, row.face_cents, row.description)
    return ListedPackage(
        offer, row.price_cents, row.position, name=row.name, details=row.details,
        hidden=row.hidden, available=row.available,
    )  # fmt: skip
