"""`recargabot serve` and `--version` as an operator runs them: flags, and start-up errors that say
in one line which setting to check (no traceback, no aiohttp warnings, no secret)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.replicas.replica import LISTENING, RECARGABOT, free_port

TOKEN = "123456:secretTokenOfTheBot"


def _env(workdir: Path, **settings: str) -> dict[str, str]:
    inherited = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    return {
        **inherited,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
        "SANDBOX_SECRET_PATH": str(workdir / "sandbox-secret"),
        **settings,
    }


def _recargabot(workdir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RECARGABOT), *args], env=_env(workdir, **settings), cwd=workdir,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = _recargabot(tmp_path, "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == "recargabot 0.1.0"


def test_serve_listens_where_host_and_port_say_over_the_environment(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(RECARGABOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(tmp_path, HOST="0.0.0.0", PORT=str(free_port())), cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:  # blocks until uvicorn says where it listens
            lines.append(line)
            if LISTENING in line:
                break
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[1]

    assert f"http://127.0.0.1:{port}" in lines[-1]
    assert health.status_code == 200
    assert process.returncode == 0
    assert "Traceback" not in "".join(lines) + rest


def _one_line_failure(result: subprocess.CompletedProcess[str], setting: str) -> str:
    """The one line that names ``setting``; the process failed and said nothing alarming else."""
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "Unclosed" not in output
    [line] = [line for line in output.splitlines() if setting in line]
    assert line.startswith("recargabot: ")
    return line


@pytest.mark.parametrize("command", [["serve"], ["serve", "--port", "0"]])
def test_an_unreachable_bot_api_at_start_is_one_line_naming_its_settings(
    tmp_path: Path, command: list[str]
) -> None:
    closed = free_port()  # bound then released: nothing listens there

    result = _recargabot(
        tmp_path, *command, TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{closed}/bot",
    )  # fmt: skip

    line = _one_line_failure(result, "TELEGRAM_API_BASE_URL")
    assert "TELEGRAM_BOT_TOKEN" in line
    assert TOKEN not in result.stdout + result.stderr


def test_an_unreachable_database_is_one_line_naming_database_url(tmp_path: Path) -> None:
    closed = free_port()
    url = f"postgresql+asyncpg://bot:dbSecretPassword@127.0.0.1:{closed}/recargabot"

    result = _recargabot(tmp_path, "serve", DATABASE_URL=url)

    _one_line_failure(result, "DATABASE_URL")
    assert "dbSecretPassword" not in result.stdout + result.stderr


def test_settings_that_do_not_fit_together_are_one_line_naming_them(tmp_path: Path) -> None:
    result = _recargabot(tmp_path, "serve", STRIPE_SECRET_KEY="sk_test_aloneWithoutItsSecret")

    _one_line_failure(result, "STRIPE_WEBHOOK_SECRET")
    assert "aloneWithoutItsSecret" not in result.stdout + result.stderr
