"""`recargabot promo …` against the limited Telegram fake: dry run, send, status, list, resume."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.app import data_keys
from bot.cli import _parser
from bot.promo_cli import UsageError, _run
from bot.settings import Settings
from conversations.broadcast import Promo, RecipientState
from storage.campaigns import Audience, SqlCampaigns
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from tests.promos.conftest import Customers


@pytest.fixture
def cli_settings(settings: Settings, paced_api) -> Settings:
    return settings.model_copy(
        update={
            "telegram_bot_token": SecretStr("123456:TEST-token"),
            "telegram_api_base_url": paced_api[1],
            "promo_telegram_per_second": 90.0,
        }
    )


@pytest.fixture
async def keyed(cli_settings: Settings) -> AsyncIterator[tuple[Customers, SqlCampaigns]]:
    """Customers written with the keys the command line reads them with."""
    engine = make_engine(cli_settings.database_url, keys=data_keys(cli_settings))
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    yield Customers.of(engine), SqlCampaigns(sessions)
    await engine.dispose()


async def promo(settings: Settings, capsys, *argv: str) -> dict:
    args = _parser().parse_args(["promo", *argv, "--json"])
    assert await _run(args, settings) == 0
    return json.loads(capsys.readouterr().out)


async def test_dry_run_counts_the_audience_and_sends_nothing(
    cli_settings, keyed, paced_api, capsys
):
    customers, _ = keyed
    await customers.many(1000, 4)
    await customers.add(2000, opt_in=False)

    shown = await promo(cli_settings, capsys, "send", "--text", "Doble de megas", "--dry-run")

    assert shown == {
        "dry_run": True, "audience": {"telegram": 4}, "text": "Doble de megas", "image_url": None,
    }  # fmt: skip
    assert paced_api[0].per_chat == {}


async def test_send_then_status_and_list(cli_settings, keyed, paced_api, capsys):
    customers, _ = keyed
    keys = await customers.many(3000, 40)

    sent = await promo(cli_settings, capsys, "send", "--text", "Doble de megas")
    status = await promo(cli_settings, capsys, "status", str(sent["id"]))
    listed = await promo(cli_settings, capsys, "list")

    assert sent["state"] == "done" and sent["counts"]["sent"] == 40
    assert status["counts"] == {**dict.fromkeys(status["counts"], 0), "sent": 40}
    assert [c["id"] for c in listed["campaigns"]] == [sent["id"]]
    assert paced_api[0].per_chat == {key.chat_id: 1 for key in keys}


async def test_resume_sends_the_rest_and_never_the_unknown_ones(
    cli_settings, keyed, paced_api, capsys
):
    customers, campaigns = keyed
    keys = await customers.many(4000, 30)
    campaign_id = await campaigns.create(Promo("Hola"), Audience(), created_by="test")
    await campaigns.start(campaign_id)
    first = await campaigns.pending(campaign_id, after=0, limit=5)
    for recipient in first:  # five requests on their way, then the sender died
        assert await campaigns.claim(recipient.id) == RecipientState.SENDING

    resumed = await promo(cli_settings, capsys, "resume", str(campaign_id))

    assert resumed["counts"]["sent"] == 25 and resumed["counts"]["unknown"] == 5
    unknown = {r.key.chat_id for r in first}
    assert paced_api[0].per_chat == {k.chat_id: 1 for k in keys if k.chat_id not in unknown}


async def test_send_with_an_image_url_sends_photos_with_the_text_as_caption(
    cli_settings, keyed, paced_api, capsys
):
    customers, campaigns = keyed
    keys = await customers.many(5000, 3)
    image = "https://cdn.recargabot.pe/promos/2x-megas.jpg"

    sent = await promo(
        cli_settings, capsys, "send", "--text", "Doble de megas", "--image-url", image
    )

    photos = paced_api[0].of("sendPhoto")
    assert sorted(str(c.params["chat_id"]) for c in photos) == sorted(k.chat_id for k in keys)
    assert {(c.params["photo"], c.params["caption"]) for c in photos} == {(image, "Doble de megas")}
    assert sent["counts"]["sent"] == 3
    assert (await campaigns.get(sent["id"])).promo.image_url == image


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--text", "x", "--template-vars", '{"1": "a"}'],
        ["send", "--text", "x", "--whatsapp-template", "HX1", "--template-vars", "[1]"],
        ["send", "--text", "x", "--channel", "whatsapp"],  # Twilio not configured
        ["send", "--text", "x", "--inactive-days", "0"],
        ["send", "--text", "x", "--image-url", "http://cdn.example/promo.jpg"],  # not https
        ["send", "--text", "x" * 1025, "--image-url", "https://cdn.example/promo.jpg"],
        ["status", "99"],
    ],
)
async def test_bad_options_are_told_to_the_operator(cli_settings, keyed, argv):
    with pytest.raises(UsageError):
        await _run(_parser().parse_args(["promo", *argv]), cli_settings)
