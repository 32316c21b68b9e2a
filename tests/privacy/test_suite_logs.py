"""Point 1 over the whole suite: no log line of any test, and no database file it left, holds
the personal data the tests type in (the canaries, and the suite's usual names and numbers)."""

from __future__ import annotations

import pytest

from tests.conftest import LOG_WATCH
from tests.privacy.canary import SUITE_CANARIES
from tests.privacy.test_canary import journeys


@pytest.mark.after_suite
async def test_no_log_line_of_the_session_holds_personal_data(request, services, messenger):
    watch = request.config.stash[LOG_WATCH]

    await journeys(services, messenger)  # so that even a lone run of this test searches lines

    assert watch.seen > 0
    assert watch.leaks == []


@pytest.mark.after_suite
def test_no_database_file_of_the_session_holds_personal_data(tmp_path_factory):
    files = [
        path
        for pattern in ("*.db", "*.db-wal", "*.sqlite*")
        for path in tmp_path_factory.getbasetemp().rglob(pattern)
    ]

    leaks = {
        str(path): [c for c in SUITE_CANARIES if c.encode() in path.read_bytes()] for path in files
    }

    assert files  # the session's databases were found, so they were searched
    assert {path: found for path, found in leaks.items() if found} == {}
