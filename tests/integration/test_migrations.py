"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData
from sqlmodel import SQLModel

from storage.db import make_engine
from storage.migrate import differences, upgrade


async def test_migrations_build_the_schema_of_the_models(database_url):
    engine = make_engine(database_url)

    await upgrade(engine)
    await upgrade(engine)  # a second start finds nothing to do
    found = await differences(engine)
    await engine.dispose()

    assert found == [], "models changed without a migration: run `recargabot db revision`"


async def test_a_model_change_without_a_migration_is_detected(database_url):
    engine = make_engine(database_url)
    changed = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["orders"].append_column(Column("loyalty_points", Integer))

    await upgrade(engine)
    found = await differences(engine, changed)
    await engine.dispose()

    assert [(kind, column.name) for kind, *_, column in found] == [("add_column", "loyalty_points")]
