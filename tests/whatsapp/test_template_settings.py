"""The template settings: "COUNT:SID" pairs read once at start-up, mistakes refused by name."""

from __future__ import annotations

import pytest

from adapters.twilio_messenger import Templates
from bot.settings import Settings
from bot.whatsapp import templates

A, B = "HX" + "a" * 32, "HX" + "B" * 32


def test_pairs_become_templates_by_count():
    settings = Settings(
        _env_file=None, twilio_template_quick_reply_sids=f" 2:{A} , 3:{B},",
        twilio_template_list_picker_sids=f"8:{A}", twilio_template_call_to_action_sid=B,
        twilio_template_call_to_action_url_prefix="https://checkout.stripe.com/",
    )  # fmt: skip

    assert templates(settings) == Templates(
        quick_reply={2: A, 3: B}, list_picker={8: A}, call_to_action=B,
        call_to_action_url="https://checkout.stripe.com/",
    )  # fmt: skip


def test_nothing_set_is_no_templates():
    assert templates(Settings(_env_file=None)) == Templates()


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        (
            "twilio_template_quick_reply_sids",
            f"4:{A}",
            "QUICK_REPLY_SIDS: '4' is not a count in 1-3",
        ),
        (
            "twilio_template_list_picker_sids",
            f"3:{A}",
            "LIST_PICKER_SIDS: '3' is not a count in 4-10",
        ),
        ("twilio_template_list_picker_sids", f"11:{A}", "'11' is not a count in 4-10"),
        ("twilio_template_quick_reply_sids", A, "is not a count"),
        ("twilio_template_quick_reply_sids", "2:HXnot-a-sid", "QUICK_REPLY_SIDS: 'HXnot-a-sid'"),
        ("twilio_template_call_to_action_sid", A, "CALL_TO_ACTION_SID and _URL_PREFIX together"),
        ("twilio_template_call_to_action_url_prefix", "https://x/", "_URL_PREFIX together"),
    ],
)
def test_a_malformed_template_setting_stops_the_start_up(setting: str, value: str, error: str):
    with pytest.raises(ValueError, match=error):
        templates(Settings(_env_file=None, **{setting: value}))
