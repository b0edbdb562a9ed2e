"""The baseline of the Matrix benchmarks: a minimal matrix-nio echo bot.

``python -m bench.echo HOMESERVER USER_ID PASSWORD [STORE]`` logs in, accepts
every invitation, and answers every text message of someone else with an
``m.notice`` holding the same text. It prints ``echo ready`` once its first
sync is done (earlier messages are not answered). The way nio-template bots
are written: callbacks and ``sync_forever``. With a STORE folder it has
encryption on, as nio bots have it: it reads and answers in encrypted rooms
and sends keys to every device it sees (no verification).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, MatrixRoom, RoomMessageText


async def serve(homeserver: str, user_id: str, password: str, store: str = "") -> None:
    client = AsyncClient(
        homeserver,
        user_id,
        store_path=store,
        config=AsyncClientConfig(encryption_enabled=bool(store)),
    )

    async def on_message(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == client.user_id:
            return
        await client.room_send(
            room.room_id,
            "m.room.message",
            {"msgtype": "m.notice", "body": event.body},
            ignore_unverified_devices=True,
        )

    async def on_invite(room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == client.user_id and event.membership == "invite":
            await client.join(room.room_id)

    await client.login(password, device_name="echo")
    await client.sync(timeout=0, full_state=True)  # the past is not answered
    client.add_event_callback(on_message, RoomMessageText)
    client.add_event_callback(on_invite, InviteMemberEvent)
    print("echo ready", flush=True)
    try:
        await client.sync_forever(timeout=30_000)
    finally:
        await client.close()


def main() -> int:
    homeserver, user_id, password = sys.argv[1:4]
    store = sys.argv[4] if len(sys.argv) > 4 else ""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(homeserver, user_id, password, store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
