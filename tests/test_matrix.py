"""The Matrix adapter end to end: a real Synapse on loopback (tests/synapse.py), our
composition root (``app.run.serve``), a real SQLite database, and members who
are matrix-nio clients. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import itertools
import logging
import re
import shutil
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from sqlalchemy import Engine, text

from app.run import serve
from letsbot.clock import SystemClock
from letsbot.config import Settings
from tests.support import Driver, make_settings

try:
    from nio import (
        Api,
        AsyncClient,
        AsyncClientConfig,
        LoginResponse,
        RoomCreateResponse,
        RoomPreset,
        RoomSendResponse,
    )

    from adapters.matrix import Tuning, diagnose
    from tests.synapse import Synapse
except ImportError as error:  # pragma: no cover - the test extra installs them
    pytest.skip(f"matrix-nio or matrix-synapse is not installed: {error}", allow_module_level=True)

PASSWORD = "correct horse battery"
# The bot's account is shared by the tests (one Synapse per session), and so are its
# cross-signing keys: each test's new store restores them with this recovery key.
RECOVERY_KEY = "EsTW oTqj HCJx dk29 c4dk H394 k2v9 wsHL yt7W 82H8 gZ7z B3NZ"
FAST = Tuning(poll_timeout=2, backoff_start=0.05, backoff_max=0.5, undecryptable_after=0.3)
_names = itertools.count(1)
T = TypeVar("T")


async def until(check: Callable[[], T], timeout: float = 10.0, what: str = "a condition") -> T:
    """Wait until ``check()`` is truthy; its value. Polls with short awaits, bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    if importlib.util.find_spec("synapse") is None:
        pytest.skip("matrix-synapse is not installed (pip install -e '.[test]')")
    server = Synapse(tmp_path_factory.mktemp("synapse"))
    server.configure()
    server.start()
    server.register("letsbot", PASSWORD)
    yield server
    server.stop()


class Person:
    """A member at a Matrix client: sends, reacts, and sees everything in their rooms."""

    def __init__(
        self, server: Synapse, name: str, *, encrypted: bool = False, same_as: Person | None = None
    ) -> None:
        """``same_as``: another device (a second login) of that person."""
        if same_as is None:
            self.localpart = f"{name.lower()}{next(_names)}"
            self.user_id = server.register(self.localpart, PASSWORD)
        else:
            self.localpart, self.user_id = same_as.localpart, same_as.user_id
        self.encrypted = encrypted
        store = server.folder / "people" / f"{self.localpart}-{next(_names)}"
        store.mkdir(parents=True)
        self.client = AsyncClient(
            server.url,
            self.user_id,
            store_path=str(store),
            config=AsyncClientConfig(
                encryption_enabled=encrypted,
                backoff_factor=0.02,
                max_timeout_retry_wait_time=0.3,
            ),
        )
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.key_requests: list[Any] = []  # room key requests other devices sent this one
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        answer = await self.client.login(PASSWORD)
        assert isinstance(answer, LoginResponse), answer
        await self.client.sync(timeout=0)
        await self.chores()
        self._task = asyncio.create_task(self._sync())

    async def chores(self) -> None:
        """What nio's sync_forever does between syncs: keys uploaded, queried, claimed."""
        client = self.client
        if not self.encrypted:
            return
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def _sync(self) -> None:
        while True:
            try:
                response = await self.client.sync(timeout=500)
                await self.chores()
            except Exception:  # the homeserver restarts in one test
                await asyncio.sleep(0.05)
                continue
            for room_id, info in getattr(getattr(response, "rooms", None), "join", {}).items():
                for event in info.timeline.events:
                    seen = {**event.source, "decrypted": getattr(event, "decrypted", False)}
                    self.events.setdefault(room_id, []).append(seen)
            for room_id in getattr(getattr(response, "rooms", None), "invite", {}):
                await self.client.join(room_id)
            for event in getattr(response, "to_device_events", []):
                if type(event).__name__ == "RoomKeyRequest":
                    self.key_requests.append(event)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    async def say(self, room_id: str, line: str, **extra: Any) -> str:
        content = {"msgtype": "m.text", "body": line, **extra}
        answer = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        return str(answer.event_id)

    async def react(self, room_id: str, event_id: str, key: str) -> None:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        await self.client.room_send(room_id, "m.reaction", content)

    def notices(self, room_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events.get(room_id, [])
            if e.get("type") == "m.room.message" and e["content"].get("msgtype") == "m.notice"
        ]

    async def reply(self, room_id: str, contains: str, after: int = 0) -> dict[str, Any]:
        found = await until(
            lambda: [n for n in self.notices(room_id)[after:] if contains in n["content"]["body"]],
            what=f"{contains!r} in {room_id}",
        )
        return found[0]

    async def ask(self, room_id: str, line: str, expect: str, **extra: Any) -> dict[str, Any]:
        before = len(self.notices(room_id))
        await self.say(room_id, line, **extra)
        return await self.reply(room_id, expect, before)

    def joined(self, room_id: str, user_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return room is not None and user_id in room.users

    async def room(self, *invite: str, direct: bool = False, encrypted: bool = False) -> str:
        """A new room with ``invite`` in it (waited for until they joined)."""
        state = []
        if encrypted:
            state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        created = await self.client.room_create(
            is_direct=direct,
            invite=list(invite),
            preset=RoomPreset.trusted_private_chat if direct else RoomPreset.private_chat,
            initial_state=state,
        )
        assert isinstance(created, RoomCreateResponse), created
        return str(created.room_id)

    async def dm(self, bot_id: str) -> str:
        """A direct chat with the bot; encrypted as Element makes one when the member's
        client has encryption on (``m.room.encryption`` in the initial state)."""
        room_id = await self.room(bot_id, direct=True, encrypted=self.encrypted)
        await until(lambda: self.joined(room_id, bot_id), what="the bot in the direct chat")
        return room_id


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Harness:
    """The bot as ``letsbot run`` composes it, and the people around it."""

    server: Synapse
    engine: Engine
    people: list[Person] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    coordinators: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    log: Lines = field(default_factory=Lines)
    matrix: dict[str, Any] = field(default_factory=dict)  # more of the [matrix] section
    tuning: Tuning = FAST

    @property
    def bot_id(self) -> str:
        return "@letsbot:localhost"

    def settings(self) -> Settings:
        return make_settings(
            group={"coordinators": ["console:admin", *self.coordinators]},
            matrix={
                "enabled": True,
                "homeserver": self.server.url,
                "user_id": self.bot_id,
                "password": PASSWORD,
                "group_rooms": self.rooms,
                "recovery_key": RECOVERY_KEY,
                **self.matrix,
            },
        )

    async def person(
        self, name: str, *, encrypted: bool = False, same_as: Person | None = None
    ) -> Person:
        person = Person(self.server, name, encrypted=encrypted, same_as=same_as)
        await person.start()
        self.people.append(person)
        return person

    async def start(self) -> None:
        self.stop_event = asyncio.Event()
        ready = len([line for line in self.log.lines if line.startswith("matrix ready")])
        task = asyncio.create_task(
            serve(
                self.settings(),
                self.engine,
                SystemClock(),
                self.stop_event,
                tunings={"matrix": self.tuning},
            )
        )
        self.task = task
        await until(
            lambda: (
                task.done()
                or len([line for line in self.log.lines if line.startswith("matrix ready")]) > ready
            ),
            timeout=30,
            what="the bot to start",
        )
        if task.done():
            task.result()

    async def stop(self) -> None:
        assert self.task is not None
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)

    def scalar(self, sql: str, **params: object) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(text(sql), params).scalar_one()
            connection.rollback()
        return int(value)

    def balance(self, person: Person) -> int:
        return self.scalar(
            "SELECT m.balance FROM members m JOIN identities i ON i.member_id = m.id"
            " WHERE i.platform = 'matrix' AND i.user_id = :user_id",
            user_id=person.user_id,
        )

    def payments(self) -> int:
        return self.scalar("SELECT count(*) FROM transfers WHERE kind = 'payment'")

    async def member(self, person: Person, full_name: str, coordinator: Person) -> str:
        """``person`` joins in a direct chat, the coordinator approves; their direct room."""
        room = await person.dm(self.bot_id)
        await person.ask(room, f"/aanmelden {full_name}", "kandidaat-lid")
        coordinator_room = await self.direct_room_of(coordinator)
        notice = await coordinator.reply(coordinator_room, f"Nieuwe kandidaat: {full_name}")
        match = re.search(r"\((DU-\d+)\)", notice["content"]["body"])
        assert match is not None
        await coordinator.ask(coordinator_room, f"/goedkeuren {match[1]}", "is nu lid")
        await person.reply(room, f"Welkom bij LETS Durme, {full_name}!")
        return room

    async def direct_room_of(self, person: Person) -> str:
        rooms = await until(
            lambda: [
                r
                for r, room in person.client.rooms.items()
                if r not in self.rooms and self.bot_id in room.users and len(room.users) == 2
            ],
            what="a direct chat with the bot",
        )
        return str(rooms[0])


@pytest.fixture
async def mx(synapse: Synapse, engine: Engine) -> AsyncIterator[Harness]:
    harness = Harness(synapse, engine)
    logging.getLogger().addHandler(harness.log)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("nio").setLevel(logging.WARNING)
    yield harness
    logging.getLogger().removeHandler(harness.log)
    if harness.task is not None and not harness.task.done():
        await harness.stop()
    for person in harness.people:
        await person.close()


async def group_with_ann_and_bob(
    mx: Harness, *, encrypted: bool = False
) -> tuple[Person, Person, str, str, str]:
    """Ann (coordinator) and Bob (member), a group room with both; the bot running.

    ``encrypted``: their clients encrypt, and so are the group room and their direct chats.
    """
    ann = await mx.person("Ann", encrypted=encrypted)
    bob = await mx.person("Bob", encrypted=encrypted)
    mx.coordinators.append(f"matrix:{ann.user_id}")
    group = await ann.room(mx.bot_id, bob.user_id, encrypted=encrypted)
    await until(lambda: bob.joined(group, bob.user_id), what="Bob in the group")
    mx.rooms.append(group)
    await mx.start()
    ann_dm = await ann.dm(mx.bot_id)
    await ann.ask(ann_dm, "/start", "Welkom bij LETS Durme")
    bob_dm = await mx.member(bob, "Bob Peeters", ann)
    return ann, bob, group, ann_dm, bob_dm


# the scenarios ------------------------------------------------------------


async def test_join_in_a_direct_chat_approve_and_pay_in_the_group(mx: Harness) -> None:
    ann, bob, group, _, _ = await group_with_ann_and_bob(mx)
    assert any(line.startswith(f"matrix ready: {mx.bot_id}") for line in mx.log.lines)

    # Bob pays Ann in the group, naming her with a pill; the question replies to his command.
    payment = await bob.say(
        group,
        "/betaal Ann 30 soep",
        format="org.matrix.custom.html",
        formatted_body=f'/betaal <a href="https://matrix.to/#/{ann.user_id}">Ann</a> 30 soep',
        **{"m.mentions": {"user_ids": [ann.user_id]}},
    )
    question = await bob.reply(group, "Betaal 30 pluimen aan")
    content = question["content"]
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == payment
    assert "(DU-001) voor: soep?" in content["body"]
    assert "\n\n1. Ja\n2. Nee\n" in content["body"]
    assert content["format"] == "org.matrix.custom.html"
    assert "1. Ja<br>2. Nee" in content["formatted_body"]

    # Ann's 👍 is not an answer to Bob's question; Bob's is.
    await ann.react(group, question["event_id"], "👍")
    await bob.react(group, question["event_id"], "👍")
    booked = await bob.reply(group, "Geboekt:")
    assert "Bob Peeters (DU-002) → " in booked["content"]["body"]
    assert mx.payments() == 1
    assert mx.balance(bob) == -30 and mx.balance(ann) == 30

    # Typing "ja" answers too (a bare "1" in a group could be a vote); user text is
    # escaped in the HTML.
    await bob.ask(group, f"/betaal {ann.user_id} 5 <b>thee</b>", "Betaal 5 pluimen")
    question = bob.notices(group)[-1]["content"]
    assert "&lt;b&gt;thee&lt;/b&gt;" in question["formatted_body"]
    await bob.ask(group, "ja", "Geboekt:")
    assert mx.balance(bob) == -35 and mx.payments() == 2


async def test_answers_belong_to_their_question_and_chat(mx: Harness) -> None:
    ann, bob, group, ann_dm, bob_dm = await group_with_ann_and_bob(mx)
    # Bob's own payment is asked in the group; Ann's request in Bob's direct chat.
    own = await bob.ask(group, f"/betaal {ann.user_id} 3 koffie", "Betaal 3 pluimen")
    await ann.ask(ann_dm, "/vraagbetaling DU-002 40 soep", "Ik heb Bob Peeters")
    request = await bob.reply(bob_dm, "vraagt 40 pluimen van je")

    # "yes" in the group answers his own question there, not Ann's request.
    await bob.ask(group, "yes", "Geboekt:")
    assert mx.balance(bob) == -3 and mx.payments() == 1
    # The question's 👍 answers nothing any more (a typed "yes" closed it too).
    before = len(bob.notices(group))
    await bob.react(group, own["event_id"], "👍")
    await bob.ask(group, "/x", "/x")  # everything before it was handled
    assert len(bob.notices(group)) == before + 1 and mx.payments() == 1

    # A reply "nee" to the request in his direct chat declines exactly it.
    await bob.say(
        bob_dm, "nee", **{"m.relates_to": {"m.in_reply_to": {"event_id": request["event_id"]}}}
    )
    await ann.reply(ann_dm, "heeft je betaalverzoek geweigerd")
    assert mx.balance(bob) == -3 and mx.payments() == 1


async def test_a_payment_sent_while_the_bot_is_down_is_booked_once(mx: Harness) -> None:
    _, bob, _, _, bob_dm = await group_with_ann_and_bob(mx)
    await bob.ask(bob_dm, "/betaal DU-001 5 appels", "Betaal 5 pluimen")
    await bob.ask(bob_dm, "ja", "Geboekt:")
    await mx.stop()

    await bob.say(bob_dm, "/betaal DU-001 7 peren")  # while the bot is down
    before = len(bob.notices(bob_dm))
    await mx.start()
    await bob.reply(bob_dm, "Betaal 7 pluimen", before)
    await bob.ask(bob_dm, "ja", "Geboekt:")
    assert mx.payments() == 2 and mx.balance(bob) == -12

    # Restarted again: nothing is run a second time.
    await mx.stop()
    await mx.start()
    await bob.ask(bob_dm, "/saldo", "Je saldo: -12 pluimen")
    bodies = [n["content"]["body"] for n in bob.notices(bob_dm)]
    assert len([b for b in bodies if b.startswith("Betaal 5 pluimen")]) == 1
    assert len([b for b in bodies if b.startswith("Betaal 7 pluimen")]) == 1
    assert mx.payments() == 2
    # Logged in with the password once; the restarts reused the stored session (one device).
    devices = {m[1] for line in mx.log.lines if (m := re.search(r"\(device (\w+)\)", line))}
    assert len(devices) == 1


async def test_the_first_start_acts_on_none_of_the_history(mx: Harness) -> None:
    from nio import AsyncClient as Client

    ann = await mx.person("Ann")
    group = await ann.room(mx.bot_id)
    # The bot's account was in the room before this database existed.
    old = Client(mx.server.url, mx.bot_id)
    await old.login(PASSWORD)
    await old.join(group)
    await ann.say(group, "/start")
    await ann.say(group, "/aanmelden Ann Oud")
    await old.close()

    mx.rooms.append(group)
    await mx.start()
    await ann.ask(group, "/hulp", "/aanmelden")
    assert len(ann.notices(group)) == 1
    assert mx.scalar("SELECT count(*) FROM members WHERE number > 0") == 0


async def test_a_synapse_restart_while_the_bot_runs_is_survived(mx: Harness) -> None:
    ann = await mx.person("Ann")
    await mx.start()
    room = await ann.dm(mx.bot_id)
    await ann.ask(room, "/start", "Welkom bij LETS Durme")

    await asyncio.to_thread(mx.server.restart)
    await until(lambda: any("can't reach the homeserver" in x for x in mx.log.lines))
    await until(
        lambda: any("homeserver answers again" in x for x in mx.log.lines),
        timeout=20,
        what="the bot back online",
    )
    await ann.ask(room, "/hulp", "/aanmelden")
    assert len([x for x in mx.log.lines if "can't reach the homeserver" in x]) == 1


async def test_an_encrypted_direct_chat_join_and_balance_across_a_restart(mx: Harness) -> None:
    ann = await mx.person("Ann")
    mx.coordinators.append(f"matrix:{ann.user_id}")
    await mx.start()
    ann_dm = await ann.dm(mx.bot_id)
    await ann.ask(ann_dm, "/start", "Welkom bij LETS Durme")
    bob = await mx.person("Bob", encrypted=True)
    bob_dm = await mx.member(bob, "Bob Peeters", ann)  # his encrypted direct chat
    assert bob.client.rooms[bob_dm].encrypted
    sent = [e for e in bob.events[bob_dm] if e["sender"] == bob.user_id and "body" in e["content"]]
    assert sent and all(e["decrypted"] for e in sent)  # he wrote encrypted ...
    answer = await bob.ask(bob_dm, "/saldo", "Je saldo: 0 pluimen")
    assert answer["decrypted"] and answer["sender"] == mx.bot_id  # ... and reads the answers
    privacy = await bob.ask(bob_dm, "/privacy", "Wat de bot van LETS Durme over jou bewaart")
    assert "versleutelde gesprekken versleuteld onderweg" in privacy["content"]["body"]
    await bob.ask(bob_dm, "/betaal DU-001 5 soep", "Betaal 5 pluimen")
    await bob.ask(bob_dm, "ja", "Geboekt:")
    assert mx.payments() == 1 and mx.balance(bob) == -5
    assert all(n["decrypted"] for n in bob.notices(bob_dm))

    # Restarted: the same device, and it reads what was written while it was down.
    await mx.stop()
    await bob.say(bob_dm, "/saldo")
    before = len(bob.notices(bob_dm))
    await mx.start()
    await bob.reply(bob_dm, "Je saldo: -5 pluimen", before)
    await bob.ask(bob_dm, "/hulp", "/betaal")
    balances = [n for n in bob.notices(bob_dm)[before:] if "Je saldo: -5" in n["content"]["body"]]
    assert len(balances) == 1
    devices = {m[1] for line in mx.log.lines if (m := re.search(r"\(device (\w+)\)", line))}
    assert len(devices) == 1
    assert not [line for line in mx.log.lines if "encrypt" in line and "ready" not in line]


def _verified(value: dict[str, Any], signer: str, key_id: str, public: str) -> bool:
    """The test's own check of a Matrix JSON signature (spec appendix "Signing JSON"), with
    vodozemac's ed25519, not the bot's code."""
    import json

    from vodozemac import Ed25519PublicKey, Ed25519Signature

    body = {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
    message = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    signature = value.get("signatures", {}).get(signer, {}).get(key_id)
    if signature is None:
        return False
    try:
        Ed25519PublicKey.from_base64(public).verify_signature(
            message.encode(), Ed25519Signature.from_base64(signature)
        )
    except Exception:
        return False
    return True


async def test_the_bots_device_is_cross_signed_by_its_own_account(mx: Harness) -> None:
    import json

    ann = await mx.person("Ann")
    await mx.start()
    device = await until(
        lambda: next(
            (
                m[1]
                for x in mx.log.lines
                if (m := re.search(r"matrix ready: .*\(device (\w+)\)", x))
            ),
            None,
        )
    )

    async def query() -> dict[str, Any]:
        answer = await ann.client.send(
            "POST",
            "/_matrix/client/v3/keys/query",
            json.dumps({"device_keys": {mx.bot_id: []}}),
            headers={"Authorization": f"Bearer {ann.client.access_token}"},
        )
        assert answer.status == 200
        return dict(await answer.json())

    keys = await query()
    master = keys["master_keys"][mx.bot_id]
    self_signing = keys["self_signing_keys"][mx.bot_id]
    assert master["usage"] == ["master"] and self_signing["usage"] == ["self_signing"]
    ((master_id, master_public),) = master["keys"].items()
    ((ssk_id, ssk_public),) = self_signing["keys"].items()
    assert master_id == f"ed25519:{master_public}" and ssk_id == f"ed25519:{ssk_public}"
    assert _verified(self_signing, mx.bot_id, master_id, master_public)
    bots_device = keys["device_keys"][mx.bot_id][device]
    assert _verified(bots_device, mx.bot_id, ssk_id, ssk_public)
    assert not _verified(bots_device, mx.bot_id, master_id, master_public)  # a real check
    assert any(f"device {device} cross-signed" in x for x in mx.log.lines)
    store = Path(str(mx.engine.url.database)).parent / "letsbot-matrix"
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    lines = [c.line() for c in doctor if "encryption" in c.name or "cross" in c.name]
    assert lines[0] == (
        f"OK    matrix encryption store: {store} is private (mode 700); the pickle key kept in"
        " the folder (set matrix.pickle_key to keep it apart)"
    )
    # (the devices of earlier tests on this account are signed too)
    assert re.fullmatch(
        rf"OK    matrix cross-signing: published; the bot's device .*\b{device}\b.* is signed",
        lines[1],
    )

    # A restart keeps its keys: the same identity, nothing uploaded or signed again.
    signed_lines = len([x for x in mx.log.lines if "cross-signed" in x])
    await mx.stop()
    await mx.start()
    again = await query()
    assert again["master_keys"][mx.bot_id]["keys"] == master["keys"]
    assert again["self_signing_keys"][mx.bot_id]["keys"] == self_signing["keys"]
    assert len([x for x in mx.log.lines if "cross-signed" in x]) == signed_lines
    assert stat.S_IMODE((store / "cross-signing.json").stat().st_mode) == 0o600

    # The store lost (a new device then) and no recovery key: the identity members' clients
    # know is not replaced; the log and doctor say, in one line, what is needed.
    await mx.stop()
    shutil.rmtree(store)
    mx.matrix["recovery_key"] = ""
    await mx.start()
    new_device = _device(mx, -1)
    assert new_device != device
    kept = await query()
    assert kept["master_keys"][mx.bot_id]["keys"] == master["keys"]
    assert not _verified(kept["device_keys"][mx.bot_id][new_device], mx.bot_id, ssk_id, ssk_public)
    warned = [x for x in mx.log.lines if f"device {new_device} is not cross-signed" in x]
    assert warned == [
        f"matrix: device {new_device} is not cross-signed: the account already has cross-signing"
        " keys that this store doesn't hold; the bot leaves them as they are; set"
        " matrix.recovery_key (LETSBOT_MATRIX__RECOVERY_KEY) to the account's recovery key so"
        " the bot restores them"
    ]
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    assert [c.line() for c in doctor if "cross" in c.name] == [
        "FAIL  matrix cross-signing: the account already has cross-signing keys that the store"
        " doesn't hold; fix: set matrix.recovery_key (LETSBOT_MATRIX__RECOVERY_KEY) to the"
        " account's recovery key so the bot restores them"
    ]

    # A wrong recovery key restores nothing; the right one restores the keys and signs the
    # new device with them: the same identity as before.
    await mx.stop()
    mx.matrix["recovery_key"] = "EsT1 H3Wm yHnZ VYce KwM9 c6Gk nX71 3FkR Yz9x vary hjQh 5m7X"
    # doctor tries the key, reading only: a wrong one is said before the run.
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    [line] = [c.line() for c in doctor if "cross" in c.name]
    assert line.startswith("FAIL  matrix cross-signing:") and "can't restore them" in line
    mx.matrix["recovery_key"] = RECOVERY_KEY
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    assert [c.line() for c in doctor if "cross" in c.name] == [
        "OK    matrix cross-signing: the account already has cross-signing keys that the"
        " store doesn't hold; the next 'letsbot run' restores them"
    ]
    mx.matrix["recovery_key"] = "EsT1 H3Wm yHnZ VYce KwM9 c6Gk nX71 3FkR Yz9x vary hjQh 5m7X"
    await mx.start()
    assert any("the recovery key is not the one" in x for x in mx.log.lines)
    await mx.stop()
    mx.matrix["recovery_key"] = RECOVERY_KEY
    await mx.start()
    assert _device(mx, -1) == new_device
    assert any("restored with the recovery key" in x for x in mx.log.lines)
    restored = await query()
    assert restored["master_keys"][mx.bot_id]["keys"] == master["keys"]
    assert _verified(restored["device_keys"][mx.bot_id][new_device], mx.bot_id, ssk_id, ssk_public)


async def test_a_new_bot_keeps_its_own_recovery_key_which_restores_it(mx: Harness) -> None:
    """A bot account without cross-signing keys and no recovery key configured: the bot
    makes one, writes it in its store for the operator, and that key restores it later."""
    localpart = f"freshbot{next(_names)}"
    bot = mx.server.register(localpart, PASSWORD)
    mx.matrix.update({"user_id": bot, "recovery_key": ""})
    await mx.start()
    store = Path(str(mx.engine.url.database)).parent / "letsbot-matrix"
    kept = store / "recovery-key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    recovery_key = kept.read_text().strip()
    assert re.fullmatch(r"Es(\w{2}) (\w{4} ){10}\w{4}", recovery_key)
    told = [x for x in mx.log.lines if "recovery key is in" in x]
    assert told == [
        f"matrix: the bot's recovery key is in {kept}: keep a copy apart from the store (it"
        " restores the bot's identity if the store is lost)"
    ]
    assert recovery_key not in "\n".join(mx.log.lines)  # where it is, never the key itself
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    assert next(c.line() for c in doctor if "cross" in c.name).endswith(
        f"is signed; its recovery key is in {kept}: keep a copy apart from the store"
    )
    first = _device(mx, -1)

    await mx.stop()
    shutil.rmtree(store)
    mx.matrix["recovery_key"] = recovery_key  # the operator's copy
    await mx.start()
    assert _device(mx, -1) != first
    assert any("restored with the recovery key" in x for x in mx.log.lines)
    assert any(f"device {_device(mx, -1)} cross-signed by {bot}" in x for x in mx.log.lines)
    assert not kept.exists()  # the key came from the operator: nothing new to keep


def _device(mx: Harness, index: int) -> str:
    """The bot's device as its ``index``-th start logged it."""
    return [m[1] for x in mx.log.lines if (m := re.search(r"matrix ready: .*\(device (\w+)\)", x))][
        index
    ]


async def test_an_encrypted_group_room_payments_reactions_and_votes(mx: Harness) -> None:
    ann, bob, group, ann_dm, bob_dm = await group_with_ann_and_bob(mx, encrypted=True)
    assert all(bob.client.rooms[r].encrypted for r in (group, bob_dm))
    assert ann.client.rooms[ann_dm].encrypted
    await bob.ask(group, f"/betaal {ann.user_id} 3 koffie", "Betaal 3 pluimen")
    question = bob.notices(group)[-1]
    await bob.react(group, question["event_id"], "👍")
    booked = await bob.reply(group, "Geboekt:")
    assert mx.balance(bob) == -3 and mx.payments() == 1

    await bob.ask(bob_dm, "/voorstel Koffie op de markt", "Ik heb het in de groep gemeld")
    announce = await ann.reply(group, "Nieuw voorstel #1")
    await until(
        lambda: len([e for e in bob.events.get(group, []) if e.get("type") == "m.reaction"]) == 3,
        what="the bot's reactions",
    )
    await bob.react(group, announce["event_id"], "1️⃣")
    await bob.reply(bob_dm, "Je stem op voorstel #1: Voor.")
    assert mx.scalar("SELECT count(*) FROM votes") == 1

    # A chart in an encrypted room is an encrypted attachment: only the event has its key.
    from nio import MemoryDownloadResponse
    from nio.crypto import decrypt_attachment

    from tests.test_stats import assert_png

    await ann.ask(group, "/statistiek", "Statistiek van LETS Durme")
    images = await until(
        lambda: [
            e
            for e in ann.events.get(group, [])
            if e.get("type") == "m.room.message" and e["content"].get("msgtype") == "m.image"
        ],
        what="a chart in the group",
    )
    chart = images[0]["content"]
    assert "url" not in chart and chart["file"]["url"].startswith("mxc://localhost/")
    assert images[0]["decrypted"] and chart["info"]["mimetype"] == "image/png"
    answer = await ann.client.download(mxc=chart["file"]["url"])
    assert isinstance(answer, MemoryDownloadResponse), answer
    assert not answer.body.startswith(b"\x89PNG")  # what the homeserver keeps is no picture
    file = chart["file"]
    png = decrypt_attachment(answer.body, file["key"]["k"], file["hashes"]["sha256"], file["iv"])
    assert len(png) == chart["info"]["size"]
    assert_png(png)

    for person, room in ((bob, group), (ann, group), (bob, bob_dm), (ann, ann_dm)):
        assert person.notices(room) and all(n["decrypted"] for n in person.notices(room))
    assert booked["decrypted"] and announce["decrypted"]

    # doctor: the room is encrypted and the bot holds room keys of Ann's and Bob's devices
    doctor = await diagnose(mx.settings().matrix.beside(Path(str(mx.engine.url.database))))
    assert [c.line() for c in doctor if c.name == f"matrix encryption in {group}"] == [
        f"OK    matrix encryption in {group}: the room is encrypted; the bot reads it with room"
        " keys from 2 member devices"
    ]


async def test_a_members_second_device_and_a_late_joiner_read_the_bot(mx: Harness) -> None:
    ann, bob, group, _, bob_dm = await group_with_ann_and_bob(mx, encrypted=True)
    await bob.ask(bob_dm, "/saldo", "Je saldo: 0 pluimen")  # the bot has spoken here

    # Bob logs in on a second device: it writes, and both his devices read the answer.
    tablet = await mx.person("Bob", encrypted=True, same_as=bob)
    await until(lambda: tablet.joined(bob_dm, mx.bot_id), what="the chat on his tablet")
    answer = await tablet.ask(bob_dm, "/hulp", "/betaal")
    assert answer["decrypted"]
    on_phone = await bob.reply(bob_dm, "/betaal", len(bob.notices(bob_dm)) - 1)
    assert on_phone["decrypted"] and on_phone["event_id"] == answer["event_id"]

    # Carl joins the encrypted group room late: he reads what the bot says after that.
    carl = await mx.person("Carl", encrypted=True)
    await ann.client.room_invite(group, carl.user_id)
    await until(lambda: carl.joined(group, carl.user_id), what="Carl in the group")
    await bob.ask(group, f"/betaal {ann.user_id} 2 thee", "Betaal 2 pluimen")
    said = await carl.reply(group, "Betaal 2 pluimen")
    assert said["decrypted"]


async def send_without_key(person: Person, room: str, number: int) -> None:
    """A message encrypted with a room key the bot never got (sent as it is, past nio)."""
    forged = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnAC",
        "sender_key": "c2VuZGVy",
        "session_id": "c2Vzc2lvbg",
        "device_id": "ANNPHONE",
    }
    method, path, data = Api.room_send(
        person.client.access_token, room, "m.room.encrypted", forged, f"forged-{number}"
    )
    await person.client._send(RoomSendResponse, method, path, data, (room,))


async def test_a_message_waiting_for_its_key_is_not_lost_in_a_restart(mx: Harness) -> None:
    mx.tuning = dataclasses.replace(FAST, undecryptable_after=3600)  # it waits
    ann = await mx.person("Ann", encrypted=True)
    await mx.start()
    room = await ann.dm(mx.bot_id)
    await send_without_key(ann, room, 1)
    waiting = "SELECT count(*) FROM platform_state WHERE key LIKE 'undecrypted:%'"
    await until(lambda: mx.scalar(waiting) == 1, what="the message kept while it waits")
    await mx.stop()
    mx.tuning = FAST  # restarted, and waited long enough: its sender is told
    await mx.start()
    await ann.reply(room, "Ik kon je bericht niet lezen")
    assert mx.scalar(waiting) == 0


async def test_a_message_the_bot_cant_decrypt_gets_one_plain_notice(mx: Harness) -> None:
    ann = await mx.person("Ann", encrypted=True)
    await mx.start()
    room = await ann.room(mx.bot_id, direct=True, encrypted=True)
    await until(lambda: ann.joined(room, mx.bot_id), what="the bot in the encrypted chat")
    await send_without_key(ann, room, 1)
    await send_without_key(ann, room, 2)
    notice = await ann.reply(room, "Ik kon je bericht niet lezen")
    assert notice["decrypted"]  # the notice itself is encrypted, and she reads it
    assert "coördinator van LETS Durme" in notice["content"]["body"]
    await ann.ask(room, "/hulp", "/aanmelden")  # the bot reads what she writes with her key
    unreadable = [n for n in ann.notices(room) if "niet lezen" in n["content"]["body"]]
    assert len(unreadable) == 1  # told once, not per message


async def send_with_held_key(mx: Harness, ann: Person, room: str, line: str) -> tuple[Any, Any]:
    """``line`` sent encrypted, with its room key made for the bot's device but held back
    (as a to-device message that comes syncs later, or is lost); (the key's to-device
    messages, the event sent)."""
    client = ann.client
    await until(lambda: client.rooms[room].encrypted, what="Ann's client to see encryption")
    if client.should_query_keys:
        await client.keys_query()
    await until(lambda: list(client.device_store.active_user_devices(mx.bot_id)), what="keys")
    missing = client.get_missing_sessions(room)
    if missing:
        await client.keys_claim(missing)
    held = list(
        client.olm.share_group_session_parallel(
            room, list(client.rooms[room].users), ignore_unverified_devices=True
        )
    )
    assert held
    client.olm.outbound_group_sessions[room].shared = True
    content = client.olm.group_encrypt(
        room, {"type": "m.room.message", "content": {"msgtype": "m.text", "body": line}}
    )
    method, path, data = Api.room_send(
        client.access_token, room, "m.room.encrypted", content, f"held-{next(_names)}"
    )
    sent = await client._send(RoomSendResponse, method, path, data, (room,))
    assert isinstance(sent, RoomSendResponse), sent
    return held, sent


WAITING = "SELECT count(*) FROM platform_state WHERE key LIKE 'undecrypted:%'"
ONCE = "SELECT count(*) FROM processed_events WHERE key LIKE :event"


async def test_a_message_whose_room_key_comes_late_is_handled_once_it_comes(mx: Harness) -> None:
    """Ann's client sends its message before the room key reaches the bot (a to-device
    message can come syncs later): the bot waits, then handles it once, and says nothing
    about an unreadable message."""
    from uuid import uuid4

    from nio import ShareGroupSessionResponse

    mx.tuning = dataclasses.replace(FAST, undecryptable_after=3600)  # it waits
    ann = await mx.person("Ann", encrypted=True)
    await mx.start()
    room = await ann.dm(mx.bot_id)
    held, sent = await send_with_held_key(mx, ann, room, "/hulp")
    await until(lambda: mx.scalar(WAITING) == 1, what="the message waiting for its key")
    assert not ann.notices(room)

    client = ann.client
    for sharing_with, to_device in held:  # now the key reaches the bot
        method, path, data = Api.to_device(
            client.access_token, "m.room.encrypted", to_device, uuid4()
        )
        await client._send(ShareGroupSessionResponse, method, path, data, (room, sharing_with))
    answer = await ann.reply(room, "/aanmelden")
    assert answer["decrypted"]
    assert mx.scalar(WAITING) == 0
    await ann.ask(room, "/start", "Welkom bij LETS Durme")  # a round trip later: still once
    assert len([n for n in ann.notices(room) if "/aanmelden" in n["content"]["body"]]) == 2
    assert mx.scalar(ONCE, event=f"%{sent.event_id}%") == 1
    assert not [n for n in ann.notices(room) if "niet lezen" in n["content"]["body"]]


async def test_a_lost_room_key_is_asked_for_and_the_senders_answer_is_used(mx: Harness) -> None:
    """The room key never reaches the bot: it asks Ann's devices for it
    (``m.room_key_request``); her device sends it again, forwarded, as Element does for a
    device it had sent it to; the message is handled once."""
    mx.tuning = dataclasses.replace(FAST, undecryptable_after=3600)
    ann = await mx.person("Ann", encrypted=True)
    await mx.start()
    room = await ann.dm(mx.bot_id)
    _, sent = await send_with_held_key(mx, ann, room, "/hulp")  # its key is lost
    await until(lambda: mx.scalar(WAITING) == 1, what="the message waiting for its key")
    olm = ann.client.olm
    session_id = sent_session = olm.outbound_group_sessions[room].id
    requests = await until(
        lambda: [r for r in ann.key_requests if r.session_id == sent_session],
        what="the bot's key request",
    )
    assert requests[0].sender == mx.bot_id and requests[0].room_id == room

    device = ann.client.device_store[mx.bot_id][requests[0].requesting_device_id]
    own_key = olm.account.identity_keys["curve25519"]
    group = olm.inbound_group_store.get(room, own_key, session_id)

    # The same session forwarded by another device (Ann's tablet: not the one that made
    # it) is refused: only the creator's own answer is as good as its first key.
    tablet = await mx.person("Ann", encrypted=True, same_as=ann)
    await until(lambda: tablet.joined(room, mx.bot_id), what="the chat on her tablet")
    if tablet.client.should_query_keys:
        await tablet.client.keys_query()
    await until(lambda: mx.bot_id in tablet.client.device_store.users, what="the bot's keys")
    await tablet.client.keys_claim({mx.bot_id: [device.id]})
    on_tablet = tablet.client.device_store[mx.bot_id][device.id]
    forged = tablet.client.olm._encrypt_forwarding_key(
        room, group, tablet.client.olm.session_store.get(on_tablet.curve25519), on_tablet
    )
    await tablet.client.to_device(forged)
    await until(
        lambda: any("forwarded room key from a untrusted device" in x for x in mx.log.lines),
        what="the tablet's forward refused",
    )
    await tablet.ask(room, "/start", "Welkom bij LETS Durme")  # the bot synced past it
    assert mx.scalar(WAITING) == 1
    assert mx.scalar(ONCE, event=f"%{sent.event_id}%") == 0

    # Ann's phone answers as Element does: the session it made, forwarded to the bot.
    olm_session = olm.session_store.get(device.curve25519)
    await ann.client.to_device(olm._encrypt_forwarding_key(room, group, olm_session, device))
    await until(lambda: mx.scalar(ONCE, event=f"%{sent.event_id}%") == 1, what="it handled")
    assert mx.scalar(WAITING) == 0
    assert not [n for n in ann.notices(room) if "niet lezen" in n["content"]["body"]]


async def test_a_withheld_room_key_is_told_at_once(mx: Harness) -> None:
    """A member's device that won't send the bot its room key says so
    (``m.room_key.withheld``, as Element does for devices it doesn't trust): the sender
    is told without the bot waiting for a key that won't come."""
    from nio import ToDeviceMessage, ToDeviceResponse

    mx.tuning = dataclasses.replace(FAST, undecryptable_after=3600)
    ann = await mx.person("Ann", encrypted=True)
    await mx.start()
    room = await ann.room(mx.bot_id, direct=True, encrypted=True)
    await until(lambda: ann.joined(room, mx.bot_id), what="the bot in the encrypted chat")
    await send_without_key(ann, room, 1)
    withheld = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": room,
        "session_id": "c2Vzc2lvbg",
        "sender_key": "c2VuZGVy",
        "code": "m.unverified",
        "reason": "Device not verified",
    }
    message = ToDeviceMessage("m.room_key.withheld", mx.bot_id, _device(mx, -1), withheld)
    assert isinstance(await ann.client.to_device(message), ToDeviceResponse)
    notice = await ann.reply(room, "Ik kon je bericht niet lezen")
    assert notice["decrypted"]
    assert any("its room key was withheld: m.unverified" in x for x in mx.log.lines)


async def test_a_second_process_on_the_same_database_does_not_serve_matrix(mx: Harness) -> None:
    from letsbot.hub import TransportError

    await mx.start()
    with pytest.raises(TransportError, match="another letsbot process already serves Matrix"):
        await serve(mx.settings(), mx.engine, SystemClock(), asyncio.Event())
    ann = await mx.person("Ann")
    room = await ann.dm(mx.bot_id)
    await ann.ask(room, "/hulp", "/aanmelden")  # the first one serves on
    await mx.stop()
    await mx.start()  # and once it stopped, the lease is free


async def test_the_encryption_store_is_private_and_opens_only_with_its_key(mx: Harness) -> None:
    from letsbot.hub import TransportError

    await mx.start()
    await mx.stop()
    database = Path(str(mx.engine.url.database))
    store = database.parent / "letsbot-matrix"  # beside the SQLite file
    files = sorted(p.name for p in store.iterdir())
    assert "pickle-key" in files and any(name.endswith(".db") for name in files)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in store.iterdir()} == {0o600}

    mx.matrix["pickle_key"] = "not the key it was made with"
    with pytest.raises(TransportError, match="the pickle key does not open the encryption store"):
        await mx.start()
    mx.task = None


async def test_a_matrix_member_pays_a_console_member_in_one_database(mx: Harness) -> None:
    ann = await mx.person("Ann")
    mx.coordinators.append(f"matrix:{ann.user_id}")  # a member from her first message
    await mx.start()
    console = Driver(mx.engine, mx.settings())
    console.member("carl", "Carl Console")  # admin is DU-001, Carl DU-002
    room = await ann.dm(mx.bot_id)
    await ann.ask(room, "/start", "Welkom bij LETS Durme")
    await ann.ask(room, "/betaal DU-002 12 fietsherstelling", "Betaal 12 pluimen aan Carl Console")
    await ann.ask(room, "ja", "Geboekt:")
    assert console.balance("carl") == 12 and mx.balance(ann) == -12


async def test_a_homeserver_limiting_the_bots_events_does_not_keep_it_out_of_group_rooms(
    mx: Harness,
) -> None:
    # A join is an event like a message: a start-up that joins many group rooms on a
    # homeserver limiting the bot's events gets M_LIMIT_EXCEEDED, and must wait it out.
    ann = await mx.person("Ann")
    rooms = [await ann.room(mx.bot_id) for _ in range(3)]
    mx.rooms.extend(rooms)
    mx.server.limit_messages(mx.bot_id, 2, 1)  # one event, then two a second
    try:
        await mx.start()
        for room in rooms:
            await until(lambda r=room: ann.joined(r, mx.bot_id), what="the bot in each group")
        await ann.ask(rooms[-1], "/hulp", "/aanmelden")
    finally:
        mx.server.unlimit_messages(mx.bot_id)
    assert not [line for line in mx.log.lines if "can't join group room" in line]


# configuration (no homeserver needed) --------------------------------------------


def test_matrix_config_needs_a_password_or_token_and_never_echoes_it(tmp_path: Path) -> None:
    from letsbot.config import ConfigError, load_settings

    path = tmp_path / "bot.toml"
    base = (
        '[matrix]\nenabled = true\nhomeserver = "https://hs.example"\nuser_id = "@bot:hs.example"\n'
    )
    path.write_text(base, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"matrix\.password: empty"):
        load_settings(path)
    path.write_text(base + "password = 12345\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert "matrix.password" in str(error.value) and "12345" not in str(error.value)
    secret = tmp_path / "password"
    secret.write_text("s3cret\n", encoding="utf-8")
    path.write_text(
        base + f'password_file = "{secret}"\ngroup_rooms = ["!abc", "#lets:hs.example"]\n'
    )
    settings = load_settings(path)
    assert settings.matrix.login_password() == "s3cret"
    assert settings.matrix.group_rooms == ["!abc", "#lets:hs.example"]
    path.write_text(base + 'access_token = "t"\ngroup_rooms = ["lets"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"matrix\.group_rooms"):
        load_settings(path)


async def test_votes_are_reactions_anyone_may_pick(mx: Harness) -> None:
    ann, bob, group, ann_dm, bob_dm = await group_with_ann_and_bob(mx)
    await bob.ask(bob_dm, "/voorstel Koffie op de markt", "Ik heb het in de groep gemeld")
    announce = await bob.reply(group, "Nieuw voorstel #1")
    body = announce["content"]["body"]
    assert "\n\n1️⃣ Voor\n2️⃣ Tegen\n3️⃣ Onthouding\nKies met een reactie" in body
    # The bot put the three reactions there, so a member only taps one.
    keys = await until(
        lambda: (
            [
                e["content"]["m.relates_to"]["key"]
                for e in bob.events.get(group, [])
                if e.get("type") == "m.reaction" and e["sender"] == mx.bot_id
            ]
            if len([e for e in bob.events.get(group, []) if e.get("type") == "m.reaction"]) == 3
            else None
        ),
        what="the bot's reactions",
    )
    assert keys == ["1️⃣", "2️⃣", "3️⃣"]

    # Bob taps 1️⃣: his vote, confirmed in his direct chat, nothing said in the group.
    in_group = len(bob.notices(group))
    await bob.react(group, announce["event_id"], "1️⃣")
    await bob.reply(bob_dm, "Je stem op voorstel #1: Voor.")
    await ann.react(group, announce["event_id"], "👍")  # not a choice here: ignored
    # Ann taps 3️⃣ (with the variation selector dropped, as some clients send it):
    # everyone voted, so the result is certain and announced at once.
    await ann.react(group, announce["event_id"], "3\u20e3")
    await ann.reply(ann_dm, "Je stem op voorstel #1: Onthouding.")
    result = await bob.reply(group, "Uitslag voorstel #1", in_group)
    assert "Aangenomen." in result["content"]["body"]
    assert [n["content"]["body"] for n in bob.notices(group)[in_group:]] == [
        result["content"]["body"]
    ]
    assert mx.scalar("SELECT count(*) FROM votes") == 2

    # A secret ballot offers no reactions in the group: everyone would see who tapped what.
    await ann.ask(ann_dm, "/voorstel Kas nakijken stemming:geheim", "Ik heb het in de groep gemeld")
    secret = await bob.reply(group, "Nieuw voorstel #2")
    assert "1️⃣" not in secret["content"]["body"]
    await ann.ask(ann_dm, "/stemming 2", "Keuzes:")  # (in a direct chat they are offered)
    await bob.ask(bob_dm, "/saldo", "saldo")  # the bot is past the announcement
    reacted = [
        e
        for e in bob.events.get(group, [])
        if e.get("type") == "m.reaction"
        and e["content"]["m.relates_to"]["event_id"] == secret["event_id"]
    ]
    assert reacted == []


async def test_stats_charts_are_sent_as_m_image(mx: Harness) -> None:
    """/stats of a coordinator: the text, then each chart uploaded and sent as ``m.image``."""
    from nio import MemoryDownloadResponse

    from tests.test_stats import assert_png

    ann, bob, group, ann_dm, bob_dm = await group_with_ann_and_bob(mx)

    def images(person: Person, room: str) -> list[dict[str, Any]]:
        return [
            e
            for e in person.events.get(room, [])
            if e.get("type") == "m.room.message" and e["content"].get("msgtype") == "m.image"
        ]

    # Ann, a coordinator, in the group: the text and two images there
    await ann.ask(group, "/statistiek", "Statistiek van LETS Durme")
    volume, spread = await until(
        lambda: images(ann, group) if len(images(ann, group)) == 2 else None,
        what="two images in the group",
    )
    content = volume["content"]
    assert content["body"].startswith("Staafdiagram van de ruil per maand, ")
    assert content["filename"] == "volume.png"
    assert content["info"] == {
        "mimetype": "image/png",
        "size": content["info"]["size"],
        "w": 1000,
        "h": 560,
    }
    assert spread["content"]["body"] == (
        "Staafdiagram van de saldo's: 0 onder nul, 2 op nul, 0 boven nul;"
        " het laagste saldo is 0 pluimen, het hoogste 0 pluimen."
    )
    for event in (volume, spread):
        url = event["content"]["url"]
        assert url.startswith("mxc://localhost/")
        answer = await ann.client.download(mxc=url)
        assert isinstance(answer, MemoryDownloadResponse), answer
        assert answer.content_type == "image/png"
        assert len(answer.body) == event["content"]["info"]["size"]
        assert_png(answer.body)

    # Bob, a member, in the group: the text in his direct chat, no image anywhere
    await bob.say(group, "/statistiek")
    await bob.reply(bob_dm, "Statistiek van LETS Durme")
    await ann.ask(ann_dm, "/lang en", "English")  # an English word alone switches no one
    await ann.ask(ann_dm, "/stats", "Figures of LETS Durme")
    await until(lambda: len(images(ann, ann_dm)) == 2, what="two images in Ann's direct chat")
    assert images(bob, bob_dm) == [] and len(images(ann, group)) == 2


async def test_plain_text_in_an_encrypted_room_moves_nothing(mx: Harness) -> None:
    """A message sent in the clear into an encrypted direct chat (a leaked access token, or
    the homeserver itself, without any of the member's device keys) is ignored."""
    ann = await mx.person("Ann")
    mx.coordinators.append(f"matrix:{ann.user_id}")
    await mx.start()
    ann_dm = await ann.dm(mx.bot_id)
    await ann.ask(ann_dm, "/start", "Welkom bij LETS Durme")
    bob = await mx.person("Bob", encrypted=True)
    bob_dm = await mx.member(bob, "Bob Peeters", ann)
    assert bob.client.rooms[bob_dm].encrypted
    url = f"{mx.server.url}/_matrix/client/v3/rooms/{bob_dm}/send/m.room.message"
    headers = {"Authorization": f"Bearer {bob.client.access_token}"}
    async with aiohttp.ClientSession() as http:
        for n, line in enumerate(("/betaal DU-001 7 vervalst", "ja")):
            body = {"msgtype": "m.text", "body": line}
            async with http.put(f"{url}/clear{n}", json=body, headers=headers) as answer:
                assert answer.status == 200
    # Handled in order: once the encrypted /saldo is answered, the clear ones were seen.
    await bob.ask(bob_dm, "/saldo", "Je saldo: 0 pluimen")
    assert mx.payments() == 0
    assert not [n for n in bob.notices(bob_dm) if "Betaal 7 pluimen" in n["content"]["body"]]
    assert sum("ignored an unencrypted m.room.message" in x for x in mx.log.lines) == 2


async def test_a_room_someone_else_made_is_never_a_members_private_chat(mx: Harness) -> None:
    """Carol makes a "direct" room with the bot and invites Bob: the bot answers Bob there
    nothing, and Bob's balance and receipts stay in his own direct chat."""
    ann = await mx.person("Ann")
    mx.coordinators.append(f"matrix:{ann.user_id}")
    await mx.start()
    ann_dm = await ann.dm(mx.bot_id)
    await ann.ask(ann_dm, "/start", "Welkom bij LETS Durme")
    bob = await mx.person("Bob")
    bob_dm = await mx.member(bob, "Bob Peeters", ann)
    carol = await mx.person("Carol")
    trap = await carol.room(mx.bot_id, bob.user_id, direct=True)
    await until(lambda: carol.joined(trap, mx.bot_id), what="the bot in Carol's room")
    await bob.client.join(trap)
    await until(lambda: carol.joined(trap, bob.user_id), what="Bob in Carol's room")
    await bob.say(trap, "/saldo")
    await bob.ask(bob_dm, "/saldo", "Je saldo: 0 pluimen")  # after the one in Carol's room
    assert not [n for n in carol.notices(trap) if "saldo" in n["content"]["body"].lower()]
    await ann.ask(ann_dm, "/boeken DU-001 DU-002 4 soep", "Boek 4 pluimen")
    await ann.ask(ann_dm, "ja", "Geboekt:")
    await bob.reply(bob_dm, "je kreeg 4 pluimen")  # his receipt, in his own chat
    assert not [n for n in carol.notices(trap) if "pluimen" in n["content"]["body"]]
    assert any("not their own direct chat" in x for x in mx.log.lines)
