"""What a replica's crash leaves behind: updates it answered 200 for, kept and not handled.

Run under scripts/with-postgres.sh: ``python -m bench.replica_crash``. Two replicas as in
bench/postgres.py; 200 chats each post "/start" to replica 1, which is killed (SIGKILL) once it
has answered 60 of them. The other replica keeps running (its worker passes included) for
``--wait`` seconds; then the script prints how many accepted updates got no reply and how many
are still kept in ``pending_updates``, and lets one silent chat write again via replica 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
from pathlib import Path

import asyncpg

from bench.postgres import database_url, replicas
from bench.run import Driver, driving, message_update

ACCEPTED_BEFORE_KILL = 60


async def crash(database_url: str, wait_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="recargabot-crash-") as tmp:
        async with (
            replicas(Path(tmp), database_url, 2, together=False) as group,
            driving(group.fake_port, group.urls, 200) as driver,
        ):
            await driver.purchase_closed_loop(1, [], [])  # warm-up, through both replicas
            first, second = (Driver(driver.http, (url,), driver.inbox) for url in group.urls)
            accepted: set[int] = set()

            async def chat(chat_id: int) -> None:
                await first.post(message_update(chat_id, "/start"))
                accepted.add(chat_id)
                if len(accepted) == ACCEPTED_BEFORE_KILL:
                    group.bots[0].send_signal(signal.SIGKILL)

            await asyncio.gather(*(chat(i) for i in range(100, 300)), return_exceptions=True)
            await asyncio.sleep(wait_s)
            silent = sorted(i for i in accepted if not driver.inbox.replies.get(str(i)))
            db = await asyncpg.connect(database_url.replace("+asyncpg", ""))
            try:
                kept = await db.fetchval("SELECT count(*) FROM pending_updates")
                print(f"replica 1 answered 200 to {len(accepted)} updates and was killed; "
                      f"{wait_s:.0f} s later {len(silent)} of them have no reply, "
                      f"{kept} updates are still kept")  # fmt: skip
                if silent:
                    await second.post(message_update(silent[0], "hola"))
                    await driver.inbox.until(str(silent[0]), lambda got: len(got) >= 2, 30)
                    replies = [text[:40] for text, _, _ in driver.inbox.replies[str(silent[0])]]
                    print(f"chat {silent[0]} writes again via replica 2 and gets {replies}")
            finally:
                await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wait", type=float, default=70, help="seconds after the kill")
    args = parser.parse_args()
    asyncio.run(crash(database_url(parser), args.wait))


if __name__ == "__main__":
    main()
