"""Our bot as `recargabot serve` runs it (build() under uvicorn), for the benchmark.

Settings come from the environment the benchmark sets (temporary SQLite file, fake Bot API,
sandbox payments and top-ups). Only the log level differs: INFO lines per update would be the
largest cost on this path and production ships logs elsewhere.
"""

from __future__ import annotations

import logging

import uvicorn

from bot.app import build
from bot.settings import Settings

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    uvicorn.run(build(settings), host=settings.host, port=settings.port, log_level="warning",
                backlog=2048)  # fmt: skip
