"""The terminal demo as a person scripts it: `recargabot demo --auto-pay` fed on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY

RECARGABOT = Path(sys.executable).with_name("recargabot")


def demo(workdir: Path, *lines: str, extra: tuple[str, ...] = ("--no-server",)) -> str:
    return run(workdir, *lines, extra=extra).stdout


def run(
    workdir: Path,
    *lines: str,
    extra: tuple[str, ...] = ("--no-server",),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`recargabot demo --auto-pay` fed ``lines``; it must exit 0."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
        **(env or {}),
    }
    result = subprocess.run(
        [str(RECARGABOT), "demo", "--auto-pay", *extra],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=workdir, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_a_new_customer_then_a_returning_one_recharge_from_the_terminal(tmp_path):
    first = demo(tmp_path, *NEW_CUSTOMER_TO_SUMMARY, "Confirmar", extra=("--port", "0"))
    second = demo(tmp_path, "hola", "Repetir última recarga", "Confirmar")

    assert "Recarga exitosa" in first and "987 654 321" in first and "S/ 10.00" in first
    assert "Hola de nuevo" in second
    assert second.count("Tú:") == 3 and "Recarga exitosa" in second


def test_stopping_mid_conversation_and_starting_again_resumes_the_same_step(tmp_path):
    demo(tmp_path, *NEW_CUSTOMER_TO_SUMMARY[:4])

    resumed = demo(tmp_path, "DNI", "45678912")

    assert "¿Qué documento de identidad tiene el titular?" in resumed.split("Tú:")[0]
    assert "para el 987 654 321" in resumed


CLOSED = "http://127.0.0.1:9"  # nothing listens: a real vendor client would fail here
LIVE_VENDORS = {
    "STRIPE_SECRET_KEY": "sk_test_fromTheEnvironment", "STRIPE_WEBHOOK_SECRET": "whsec_fromEnv",
    "STRIPE_API_BASE_URL": CLOSED,
    "TOPUP_PROVIDER": "reloadly", "RELOADLY_CLIENT_ID": "id", "RELOADLY_CLIENT_SECRET": "secret",
    "RELOADLY_API_BASE_URL": CLOSED, "RELOADLY_AUTH_URL": f"{CLOSED}/oauth/token",
    "TELEGRAM_BOT_TOKEN": "123456:fromTheEnvironment", "TELEGRAM_API_BASE_URL": f"{CLOSED}/bot",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "fromTheEnvironment",
    "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886", "TWILIO_API_BASE_URL": CLOSED,
}  # fmt: skip


def test_the_demo_stays_in_the_sandbox_whatever_the_environment_says(tmp_path):
    result = run(tmp_path, *NEW_CUSTOMER_TO_SUMMARY, "Confirmar", env=LIVE_VENDORS)

    assert "Recarga exitosa" in result.stdout
    [said] = [line for line in result.stderr.splitlines() if "ignora" in line]
    for name in ("STRIPE_SECRET_KEY", "TOPUP_PROVIDER", "TELEGRAM_BOT_TOKEN", "TWILIO_AUTH_TOKEN"):
        assert name in said
    assert "fromTheEnvironment" not in result.stderr + result.stdout
