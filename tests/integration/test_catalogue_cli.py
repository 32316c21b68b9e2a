"""`recargabot catalogue …`: sync from the provider, then the operators' choices, as JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.catalogue_cli import _run
from bot.cli import _parser
from bot.settings import Settings
from storage.catalogue import UnknownPackage
from tests.fake_reloadly import BUNDLES_ID, FakeReloadly
from tests.servers import served


async def catalogue(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    args = _parser().parse_args(["catalogue", *argv, "--json"])
    assert await _run(args, settings) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
async def reloadly_settings(settings: Settings) -> AsyncIterator[Settings]:
    fake = FakeReloadly()
    async with served(fake.app()) as url:
        yield settings.model_copy(
            update={
                "topup_provider": "reloadly", "reloadly_client_id": fake.client_id,
                "reloadly_client_secret": SecretStr(fake.client_secret),
                "reloadly_api_base_url": url, "reloadly_auth_url": f"{url}/oauth/token",
            }
        )  # fmt: skip


async def test_sync_reads_the_bundles_and_a_second_sync_changes_nothing(reloadly_settings, capsys):
    first = await catalogue(reloadly_settings, capsys, "sync")
    second = await catalogue(reloadly_settings, capsys, "sync")
    listed = await catalogue(reloadly_settings, capsys, "list")

    assert len(first["added"]) == 4 and first["changed"] == first["withdrawn"] == []
    assert second == {"added": [], "changed": [], "withdrawn": [], "unchanged": 4}
    assert [p["operator_id"] for p in listed] == [BUNDLES_ID] * 4
    assert listed[3] == {
        "code": listed[3]["code"], "position": 4, "name": "Paquete Mensual",
        "details": "20 GB + llamadas ilimitadas + redes sociales", "validity_days": 30,
        "price_cents": 3500, "operator_id": BUNDLES_ID, "face_cents": 3500,
        "provider_description":
            "Paquete Mensual: 20 GB + llamadas ilimitadas + redes sociales, 30 días",
        "hidden": False, "available": True, "on_sale": True,
    }  # fmt: skip


async def test_operators_hide_rename_and_reorder_and_a_sync_keeps_their_choices(settings, capsys):
    await catalogue(settings, capsys, "sync")  # the sandbox provider's packages
    codes = [p["code"] for p in await catalogue(settings, capsys, "list")]

    hidden = await catalogue(settings, capsys, "hide", codes[0])
    renamed = await catalogue(
        settings, capsys, "rename", codes[1], "--name", "Internet Semanal", "--details", "3 GB"
    )
    await catalogue(settings, capsys, "move", codes[3], "0")
    await catalogue(settings, capsys, "sync")
    listed = await catalogue(settings, capsys, "list")
    shown = await catalogue(settings, capsys, "show", codes[0])

    assert hidden["on_sale"] is False and shown["on_sale"] is True
    assert (renamed["name"], renamed["details"]) == ("Internet Semanal", "3 GB")
    assert [p["code"] for p in listed] == [codes[3], codes[0], codes[1], codes[2]]
    assert listed[1]["hidden"] is True and listed[2]["name"] == "Internet Semanal"


async def test_an_unknown_code_is_refused(settings, capsys):
    args = _parser().parse_args(["catalogue", "hide", "paq-nada"])

    with pytest.raises(UnknownPackage):
        await _run(args, settings)
