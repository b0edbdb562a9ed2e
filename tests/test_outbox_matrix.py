"""The outbox on Matrix: a message sent again after a crash reaches the member once.

The homeserver keeps one event per transaction id, and the adapter derives an
outbox message's transaction id from its row: sent again by the next process,
it is the same transaction, so the member sees it once. A real Synapse
(tests/synapse.py) and matrix-nio members, as in tests/test_matrix.py.
"""

from __future__ import annotations

from sqlalchemy import text

from letsbot.clock import SystemClock, VirtualClock
from letsbot.messages import Chat, ChatKind, Outgoing, ToChat
from letsbot.outbox import LEASE, Outbox, encode
from storage.uow import SqlUnitOfWork
from tests.test_matrix import Harness, group_with_ann_and_bob, mx, synapse, until

__all__ = ["mx", "synapse"]  # the fixtures, shared with tests/test_matrix.py


def sent(harness: Harness, outbox_id: int) -> bool:
    return harness.scalar("SELECT count(*) FROM outbox WHERE id = :id AND sent_at IS NOT NULL", id=outbox_id) == 1  # fmt: skip


async def test_a_reply_sent_again_after_a_crash_reaches_the_member_once(mx: Harness) -> None:
    _, bob, _, _, bob_dm = await group_with_ann_and_bob(mx)
    await mx.stop()
    # A process that died right after its commit left this reply unsent.
    message = Outgoing(ToChat(Chat("matrix", bob_dm, ChatKind.DIRECT)), "Geboekt: #9 (once)")
    dead = Outbox(SqlUnitOfWork(mx.engine), VirtualClock(SystemClock().now() - LEASE * 2))
    with SqlUnitOfWork(mx.engine).transaction() as store:
        [queued] = dead.queue(store, [message])
    assert queued.outbox_id is not None
    await mx.start()
    await bob.reply(bob_dm, "Geboekt: #9 (once)")
    await until(lambda: sent(mx, queued.outbox_id or 0), what="the reply marked sent")
    await mx.stop()

    # Now as if the process died after the homeserver took it, before it was marked sent.
    with mx.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE outbox SET sent_at = NULL, body = :body, lease_until = :past WHERE id = :id"
            ),
            {"body": encode(message), "past": SystemClock().now() - LEASE, "id": queued.outbox_id},
        )
    await mx.start()
    await until(lambda: sent(mx, queued.outbox_id or 0), timeout=30, what="the reply sent again")
    await bob.ask(bob_dm, "/saldo", "Je saldo")  # everything sent before it has reached Bob
    bodies = [n["content"]["body"] for n in bob.notices(bob_dm)]
    assert len([b for b in bodies if "(once)" in b]) == 1, bodies
