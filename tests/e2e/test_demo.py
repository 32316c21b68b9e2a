"""The terminal demo as a person scripts it: `recargabot demo --auto-pay` fed on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY

RECARGABOT = Path(sys.executable).with_name("recargabot")


def demo(workdir: Path, *lines: str, extra: tuple[str, ...] = ("--no-server",)) -> str:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}"}
    result = subprocess.run(
        [str(RECARGABOT), "demo", "--auto-pay", *extra],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=workdir, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


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
