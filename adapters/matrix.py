"""Matrix through matrix-nio: translates events and replies, decides nothing.

In: text messages (``m.text``) in the configured group rooms and in direct
chats become ``Incoming``; the event id is the Matrix event id, stored by the
core with its effect, so an event seen twice does nothing. A reaction 👍/👎
to a member's open question is typed as ja/nee. Notices (other bots), our
own events, edits and the history of the very first sync are never acted on.
Out: ``m.notice`` with a plain ``body`` and an HTML ``formatted_body``, as a
reply to the command in group rooms; choices as numbered options.

Matrix facts handled here (docs/stack-notes.md says why): nio's own sync token is saved
before callbacks run, so we keep our own checkpoint in the platform store and
write it only after a batch is handled; after a restart the first sync asks
for the full state; a timeline the server cut short ("limited") is filled in
with /messages; ``room.is_group`` is not "direct", so direct rooms are the
ones we were invited to with ``is_direct`` or opened ourselves; sends keep
one transaction id across retries; M_LIMIT_EXCEEDED is waited out a bounded
number of times.

Encryption: nio decrypts what it can while syncing and encrypts sends to
encrypted rooms; what its ``sync_forever`` does between syncs (key uploads,
queries, claims, to-device messages) our loop does in ``_crypto_chores``.
Members' devices are trusted on first use. The keys live in a private folder
(``adapters/matrix_store.py``); the device is cross-signed by the bot's own
account (``adapters/matrix_signing.py``), its keys restored with the recovery
key when the store was lost (``adapters/matrix_recovery.py``). A message whose
key hasn't come is tried again after each sync and its key asked of the
sender's devices; one whose key never comes (or is withheld) gets one plain
notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import vodozemac
from aiohttp import ClientError
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinedRoomsResponse,
    JoinResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    MessageDirection,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomMessagesResponse,
    RoomPreset,
    RoomResolveAliasResponse,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)
from nio.api import MATRIX_API_PATH_V3
from nio.crypto import encrypt_attachment
from nio.events import MegolmEvent
from nio.exceptions import EncryptionError, LocalProtocolError
from nio.rooms import MatrixRoom
from nio.store import SqliteStore

from adapters import matrix_recovery, matrix_signing, matrix_store
from letsbot.config import MatrixSection
from letsbot.doctor import Check
from letsbot.domain import Identity
from letsbot.errors import Busy
from letsbot.hub import Hub, PlatformStore, TransportError
from letsbot.i18n import Translator
from letsbot.markup import escape, to_html, to_plain
from letsbot.messages import (
    Chat,
    ChatKind,
    Incoming,
    Mention,
    Outgoing,
    Target,
    ToAllGroups,
    ToChat,
    ToPerson,
)
from letsbot.platforms import Platform

log = logging.getLogger(__name__)

PLATFORM = "matrix"
_MXID = re.compile(r"@[a-z0-9._=/+\-]+:[A-Za-z0-9.\-]+(?::[0-9]{1,5})?")
_PILL = re.compile(
    r"""<a\s+href=["']https://matrix\.to/#/(@[^"'?/]+)[^"']*["'][^>]*>.*?</a>""",
    re.IGNORECASE | re.DOTALL,
)
_REPLY_HTML = re.compile(r"<mx-reply>.*?</mx-reply>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_TRAILING = ",:;.!?)"
# The Matrix HTML format name, spelled so the catalog check doesn't take it for a text key
HTML = ".".join(("org", "matrix", "custom", "html"))
REACTIONS = {"👍": "ja", "👎": "nee"}  # a reaction to an open question is typed as this word
# Offered choices anyone may pick (votes) are reactions 1️⃣ … 🔟; the bot adds them
# itself, so a member only taps one. Compared without the variation selector.
KEYCAPS = (*(f"{n}\ufe0f\u20e3" for n in range(1, 10)), "🔟")

T = TypeVar("T")


# Set on an event nio decrypted: in an encrypted room only these are a member's words.
DECRYPTED = "letsbot_decrypted"


def _marked(event: Any) -> dict[str, Any]:
    """An event's dict, marked when it came encrypted and nio decrypted it."""
    source: dict[str, Any] = event.source
    return {**source, DECRYPTED: True} if getattr(event, "decrypted", False) else source


@dataclass(frozen=True)
class Tuning:
    """Our patience with the homeserver; tests shrink it."""

    poll_timeout: float = 30  # long polling of /sync, seconds
    backoff_start: float = 0.5  # first wait after a network error, doubling
    backoff_max: float = 30
    limit_retries: int = 5  # M_LIMIT_EXCEEDED is waited out this often per message
    limit_wait_max: float = 60  # and never longer than this at a time
    send_give_up: float = 600  # an unreachable homeserver: a message is dropped after this
    timeline_limit: int = 50  # events per room per sync
    gap_limit: int = 1000  # events fetched to fill a cut-short timeline
    encrypted_every: float = 600  # seconds between two "can't read it" notices in one room
    undecryptable_after: float = 30  # a message whose key hasn't come by then: the sender is told


class Health:
    """Logs a homeserver outage once when it starts and once when it ends, not per retry."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "matrix: can't reach the homeserver (%s); retrying with backoff",
                type(error).__name__ if not str(error) else error,
            )

    def ok(self) -> None:
        if self.down_since is not None:
            log.warning(
                "matrix: the homeserver answers again, after %.0f s",
                time.monotonic() - self.down_since,
            )
            self.down_since = None


_NETWORK = (ClientError, TimeoutError, OSError)
# What the operator does when the device is left unsigned (start-up log and doctor).
HINTS = {
    matrix_signing.Outcome.NEEDS_PASSWORD: (
        "; set matrix.password (LETSBOT_MATRIX__PASSWORD) so the bot can publish its keys"
    ),
    matrix_signing.Outcome.NEEDS_RECOVERY_KEY: (
        "; set matrix.recovery_key (LETSBOT_MATRIX__RECOVERY_KEY) to the account's recovery"
        " key so the bot restores them"
    ),
}
_NO_GUARD = contextlib.nullcontext()


class MatrixTransport:
    """letsbot.hub.Transport for one Matrix account."""

    platform = PLATFORM

    def __init__(
        self,
        section: MatrixSection,
        store: PlatformStore,
        translators: Mapping[str, Translator],
        *,
        language: str,
        group_name: str,
        tuning: Tuning | None = None,
    ) -> None:
        self.section = section
        self.store = store
        self.translators = translators
        self.language = language
        self.group_name = group_name
        self.tuning = tuning or Tuning()
        self.user_id = section.user_id
        self.health = Health()
        self.client: Any = None
        self._hub: Hub | None = None
        self.groups: list[str] = []  # the group rooms' ids, resolved from ids and aliases
        self._rooms: dict[str, str] = {}  # room id -> "direct:<user>" | "group" | "other"
        self._dms: dict[str, str] = {}  # user id -> their direct room with us
        # event id of a message that asks a question -> "<question id> <asked user>"
        self._asking: dict[str, str] = {}
        self._asking_written = asyncio.Lock()  # stored in the order they changed
        self._authors: dict[str, str] = {}  # event id -> sender, for replies
        self._told_encrypted: dict[str, float] = {}
        # event id -> (chat, event, first seen): encrypted messages waiting for their key
        self._undecrypted: dict[str, tuple[Chat, dict[str, Any], float]] = {}
        # Megolm session id -> code: sessions a member's device said it won't send us
        # (m.room_key.withheld, e.g. m.unverified); their messages stay unreadable.
        self._withheld: dict[str, str] = {}
        self._since: str | None = None
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False
        self._handling = False
        self._crypto = asyncio.Lock()  # key uploads, queries and claims, one at a time

    # lifecycle -----------------------------------------------------------------------
    async def start(self, hub: Hub) -> str:
        self._hub = hub
        # One device per bot: a second process on this database would log in with the
        # same stored session but other keys, and members could read neither well.
        if not await self._db(self.store.take_lease, "device"):
            raise TransportError(
                "matrix: another letsbot process already serves Matrix on this database;"
                " only one may (the bot has one device). Stop it, or disable matrix here"
            )
        await self._load()
        folder = self.section.store_path
        if folder is None:
            raise TransportError(
                "matrix: matrix.store_path is not set: name a private folder for the"
                " bot's encryption keys"
            )
        try:
            await asyncio.to_thread(matrix_store.open_folder, folder)
            key = await asyncio.to_thread(matrix_store.pickle_key, self.section, folder)
        except matrix_store.StoreError as error:
            raise TransportError(str(error)) from None
        self.client = AsyncClient(
            self.section.homeserver,
            self.user_id,
            store_path=str(folder),
            config=AsyncClientConfig(
                max_limit_exceeded=0,  # we wait out M_LIMIT_EXCEEDED ourselves, bounded
                max_timeouts=0,  # and network failures, with backoff and one log line
                encryption_enabled=True,
                store=SqliteStore,  # one file, trust included
                pickle_key=key,
                store_sync_tokens=False,  # our own checkpoint, written after handling
                request_timeout=self.tuning.poll_timeout + 30,
            ),
        )
        try:
            await self._login()
        except (vodozemac.PickleException, vodozemac.LibolmPickleException):
            raise TransportError(
                f"matrix: the pickle key does not open the encryption store in {folder};"
                " use the key it was made with (matrix.pickle_key, or the pickle-key file"
                " that was in the folder)"
            ) from None
        await asyncio.to_thread(matrix_store.make_private, folder)
        _accept_keys_from_their_creator(self.client.olm)
        await self._crypto_chores(at_start=True)
        await self._cross_sign(folder, key)
        for room in self.section.group_rooms:
            room_id = await self._join_group(room)
            if room_id is not None:
                self.groups.append(room_id)
                self._rooms[room_id] = "group"
        self._stopping = False
        first = self._since is None
        await self._sync_once(first=True)  # state and invites; the first-ever history is skipped
        if first:
            log.info("matrix: first start: earlier messages in the rooms are not acted on")
        self._poller = asyncio.create_task(self._poll(), name="matrix sync")
        rooms = ", ".join(self.groups) or "none"
        return f"{self.user_id} (device {self.client.device_id}), rooms {rooms}"

    async def stop(self) -> None:
        """Stop syncing; the batch being handled is finished and its checkpoint written."""
        self._stopping = True
        poller, self._poller = self._poller, None
        if poller is not None:
            if not self._handling:
                poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def close(self) -> None:
        await self.stop()
        if self.client is not None:
            await self.client.close()
        await self._db(self.store.drop_lease, "device")

    async def _load(self) -> None:
        self._since = await self._db(self.store.state, "since")
        self._dms = await self._db(self.store.states, "dm:")
        self._rooms = await self._db(self.store.states, "room:")
        self._asking = await self._db(self.store.states, "asking:")
        self._restore_undecrypted(await self._db(self.store.states, "undecrypted:"))

    async def _login(self) -> None:
        """Reuse a stored session (no new device per restart), else the token or password."""
        client = self.client
        stored = await self._db(self.store.state, "session")
        folder = self.section.store_path
        assert folder is not None
        if stored:
            session = json.loads(stored)
            keys = matrix_store.account_file(folder, self.user_id, str(session.get("device_id")))
            if session.get("user_id") == self.user_id and not keys.exists():
                # A device whose keys are not in this store can't read encrypted rooms
                # (its keys on the server would not match): a new device then.
                log.warning(
                    "matrix: no encryption keys of device %s in %s; logging in as a new device",
                    session.get("device_id"),
                    folder,
                )
                await self._db(self.store.set_state, "session", None)
                client.access_token = session["access_token"]  # the old device goes
                with contextlib.suppress(*_NETWORK):
                    await client.logout()
                client.access_token = ""
            elif session.get("user_id") == self.user_id:
                client.restore_login(self.user_id, session["device_id"], session["access_token"])
                whoami = await self._until_up(client.whoami)
                if isinstance(whoami, WhoamiResponse):
                    return
                log.warning("matrix: the stored session was refused; logging in again")
                await self._db(self.store.set_state, "session", None)
        token = self.section.token()
        if token:
            client.access_token = token
            whoami = await self._until_up(client.whoami)
            if not isinstance(whoami, WhoamiResponse) or whoami.user_id != self.user_id:
                raise TransportError(
                    f"matrix: the homeserver refused matrix.access_token for {self.user_id}"
                )
            client.user_id = whoami.user_id
            client.device_id = whoami.device_id or ""
            client.load_store()
            return
        password = self.section.login_password()
        answer = await self._until_up(
            lambda: client.login(password, device_name=self.section.device_name)
        )
        if not isinstance(answer, LoginResponse):
            raise TransportError(
                f"matrix: the homeserver refused the login of {self.user_id}"
                f" ({getattr(answer, 'status_code', '')}); check matrix.password"
            )
        session = {
            "user_id": answer.user_id,
            "device_id": answer.device_id,
            "access_token": answer.access_token,
        }
        await self._db(self.store.set_state, "session", json.dumps(session))

    async def _crypto_chores(self, *, at_start: bool = False) -> None:
        """What nio's sync_forever does between syncs, for our own loop: our one-time keys
        topped up, members' device lists queried (their new devices trusted on first
        use), Olm sessions claimed for devices that need one, to-device messages sent."""
        client = self.client
        if client is None or client.olm is None:
            return
        async with self._crypto:
            if client.should_upload_keys:
                uploaded = await self._until_up(client.keys_upload)
                if not isinstance(uploaded, KeysUploadResponse):
                    log.warning("matrix: the encryption keys were not uploaded: %s", uploaded)
            if client.should_query_keys:
                queried = await self._until_up(client.keys_query)
                if isinstance(queried, KeysQueryResponse):
                    self._trust_new_devices()
            if client.should_claim_keys:
                users = client.get_users_for_key_claiming()
                await self._until_up(lambda: client.keys_claim(users))
            if client.outgoing_to_device_messages:
                await self._until_up(client.send_to_device_messages)
        if at_start:
            log.info("matrix: encryption ready (device %s)", client.device_id)

    async def _cross_sign(self, folder: Path, pickle_key: str) -> None:
        """The bot's device signed by its own account, so members' clients trust it.

        Never keeps the bot from serving: what is missing is logged (and
        ``letsbot doctor`` shows it).
        """
        client = self.client
        try:
            result = await matrix_signing.cross_sign(
                lambda method, path, body: self._until_up(lambda: self._http(method, path, body)),
                self.user_id,
                client.device_id,
                folder,
                pickle_key,
                self.section.login_password(),
                self.section.secret("recovery_key"),
            )
        except matrix_signing.SealError as error:
            log.warning("matrix: the device is not cross-signed: %s", error)
            return
        await asyncio.to_thread(matrix_store.make_private, folder)
        if result.outcome is matrix_signing.Outcome.SIGNED:
            if result.restored:
                log.info(
                    "matrix: cross-signing keys of %s restored with the recovery key", self.user_id
                )
            if result.unsaved:
                log.warning(
                    "matrix: the cross-signing keys are not kept in the account's secret"
                    " storage, so no recovery key restores them: %s",
                    result.unsaved,
                )
            if result.recovery_file is not None:
                log.warning(
                    "matrix: the bot's recovery key is in %s: keep a copy apart from the"
                    " store (it restores the bot's identity if the store is lost)",
                    result.recovery_file,
                )
            if result.published:
                log.info(
                    "matrix: cross-signing keys of %s published%s",
                    self.user_id,
                    " (with the account's password)" if result.with_password else "",
                )
            if result.signed_now:
                log.info("matrix: device %s cross-signed by %s", client.device_id, self.user_id)
            return
        hint = HINTS.get(result.outcome, "")
        log.warning(
            "matrix: device %s is not cross-signed: %s%s%s",
            client.device_id,
            result.outcome.value,
            f" ({result.detail})" if result.detail else "",
            hint,
        )

    async def _http(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        return await _call(self.client, method, path, body)

    def _trust_new_devices(self) -> None:
        """Members' devices are trusted as first seen (TOFU): nobody has to verify the bot.

        nio keeps a device's first keys; a device that shows up later with other
        keys is not taken for the same one.
        """
        client = self.client
        for device in client.device_store:
            if device.user_id != self.user_id and device.trust_state.name == "unset":
                client.verify_device(device)

    async def _until_up(self, call: Callable[[], Any]) -> Any:
        delay = self.tuning.backoff_start
        while True:
            try:
                answer = await call()
            except _NETWORK as error:
                self.health.failed(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            if _server_trouble(answer):
                self.health.failed(RuntimeError(str(answer)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            self.health.ok()
            return answer

    async def _join_group(self, room: str) -> str | None:
        client = self.client
        if room.startswith("#"):
            resolved = await self._until_up(lambda: client.room_resolve_alias(room))
            if not isinstance(resolved, RoomResolveAliasResponse):
                log.warning("matrix: the room alias %s is unknown: %s", room, resolved)
                return None
            room = resolved.room_id
        joined = await self._join(room)
        if not isinstance(joined, JoinResponse):
            log.warning("matrix: can't join group room %s (invite the bot): %s", room, joined)
            return room  # an invitation later lets it join
        return room

    async def _join(self, room_id: str) -> Any:
        """Join a room; M_LIMIT_EXCEEDED is waited out a bounded number of times.

        A join is an event like a message: a homeserver that limits the bot's
        messages refuses the joins of a start-up with many group rooms.
        """
        limited = 0
        while True:
            joined = await self._until_up(lambda: self.client.join(room_id))
            if getattr(joined, "status_code", None) != "M_LIMIT_EXCEEDED":
                return joined
            limited += 1
            if limited > self.tuning.limit_retries:
                return joined
            wait = (getattr(joined, "retry_after_ms", None) or 1000) / 1000
            await asyncio.sleep(min(wait, self.tuning.limit_wait_max))

    # receiving -----------------------------------------------------------------------
    def _filter(self) -> dict[str, Any]:
        return {
            "room": {"timeline": {"limit": self.tuning.timeline_limit}},
            "presence": {"types": []},
        }

    async def _poll(self) -> None:
        delay = self.tuning.backoff_start
        while not self._stopping:
            try:
                await self._sync_once(first=False)
            except _NETWORK as error:
                self.health.failed(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            except _SyncFailed as error:
                self.health.failed(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            except Busy:
                # The database is down. Commands were told "try again" by the core;
                # what failed is storing the checkpoint (or a room's kind). Sync on
                # from the token in memory: the loop must outlive the outage.
                log.warning("matrix: database busy or unreachable; sync checkpoint not stored")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            delay = self.tuning.backoff_start

    async def _sync_once(self, *, first: bool) -> None:
        """One /sync; its events handled in order, then the checkpoint written."""
        client = self.client
        since = self._since
        if first:
            response = await self._until_up(
                lambda: client.sync(
                    timeout=0, since=since, full_state=True, sync_filter=self._filter()
                )
            )
        else:
            response = await client.sync(
                timeout=int(self.tuning.poll_timeout * 1000),
                since=since,
                sync_filter=self._filter(),
            )
        if not isinstance(response, SyncResponse):
            if getattr(response, "status_code", "") == "M_UNKNOWN_TOKEN":
                log.error("matrix: the homeserver no longer accepts our access token")
            raise _SyncFailed(str(response))
        self.health.ok()
        self._note_withheld(response.to_device_events)
        await self._crypto_chores()
        self._handling = True
        try:
            for room_id, info in response.rooms.invite.items():
                await self._on_invite(room_id, info)
            if since is not None:  # the first-ever sync's timeline is history: never acted on
                for room_id, info in response.rooms.join.items():
                    events = self._after_join(room_id, await self._timeline(room_id, info, since))
                    for event in events:
                        await self._on_event(room_id, event)
                await self._retry_undecrypted()
            self._since = response.next_batch
            await self._db(self.store.set_state, "since", response.next_batch)
        finally:
            self._handling = False

    async def _timeline(self, room_id: str, info: Any, since: str) -> list[dict[str, Any]]:
        """The room's new events, with the part a limited timeline left out fetched first."""
        events = [_marked(e) for e in info.timeline.events]
        if not info.timeline.limited or not info.timeline.prev_batch:
            return events
        older: list[dict[str, Any]] = []
        start = info.timeline.prev_batch
        while len(older) < self.tuning.gap_limit:
            page = await self._until_up(self._page(room_id, start, since))
            if not isinstance(page, RoomMessagesResponse) or not page.chunk:
                break
            older.extend(_marked(e) for e in page.chunk)
            if not page.end or page.end == start:
                break
            start = page.end
        older.reverse()
        seen = {e.get("event_id") for e in events}
        return [e for e in older if e.get("event_id") not in seen] + events

    def _page(self, room_id: str, start: str, end: str) -> Callable[[], Any]:
        return lambda: self.client.room_messages(
            room_id, start=start, end=end, direction=MessageDirection.back, limit=100
        )

    def _after_join(self, room_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """In a group room the bot has just joined, what was said before is history."""
        if self._rooms.get(room_id, "").startswith("direct:"):
            return events  # a new direct chat: what was said before the join is for us
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if (
                event.get("type") == "m.room.member"
                and event.get("state_key") == self.user_id
                and event.get("content", {}).get("membership") == "join"
                and (event.get("unsigned", {}).get("prev_content") or {}).get("membership")
                != "join"
            ):
                return events[index + 1 :]
        return events

    async def _on_invite(self, room_id: str, info: Any) -> None:
        direct = False
        inviter = None
        for event in info.invite_state:
            # nio's invite events keep their content as attributes, not in .source
            if (
                getattr(event, "state_key", None) == self.user_id
                and getattr(event, "membership", None) == "invite"
            ):
                content = getattr(event, "content", None) or {}
                direct = bool(content.get("is_direct"))
                inviter = getattr(event, "sender", None)
        if room_id in self.groups:
            await self._join(room_id)
            return
        if not direct or inviter is None:
            log.info("matrix: declined an invitation to %s (not a direct chat)", room_id)
            await self._until_up(lambda: self.client.room_leave(room_id))
            return
        joined = await self._join(room_id)
        if isinstance(joined, JoinResponse):
            await self._direct_room(inviter, room_id)

    async def _direct_room(self, user_id: str, room_id: str) -> None:
        if self._rooms.get(room_id) != f"direct:{user_id}":
            self._rooms[room_id] = f"direct:{user_id}"
            await self._db(self.store.set_state, f"room:{room_id}", f"direct:{user_id}")
        if self._dms.get(user_id) != room_id:
            self._dms[user_id] = room_id
            await self._db(self.store.set_state, f"dm:{user_id}", room_id)

    async def _on_event(self, room_id: str, event: dict[str, Any]) -> None:
        sender = event.get("sender", "")
        event_id = event.get("event_id", "")
        kind = event.get("type")
        if event_id and sender:
            self._authors[event_id] = sender
            if len(self._authors) > 5000:
                self._authors.pop(next(iter(self._authors)))
        if sender == self.user_id or not event_id:
            return  # our own events
        chat = await self._chat(room_id, sender)
        if chat is None:
            return
        room = self.client.rooms.get(room_id) if self.client else None
        clear = kind == "m.room.message" and not event.get(DECRYPTED)
        if clear and room is not None and room.encrypted:
            # Sent in the clear into an encrypted room: no device key vouches for it (a
            # leaked token, a homeserver admin). It moves no money. (Reactions still
            # count: clients, nio among them, send them unencrypted.)
            log.warning("matrix: ignored an unencrypted %s in encrypted room %s", kind, room_id)
            return
        try:
            if kind == "m.room.encrypted":
                await self._wait_for_key(chat, room_id, event)
            elif kind == "m.reaction":
                await self._on_reaction(chat, event)
            elif kind == "m.room.message":
                await self._on_message(chat, event)
        except Exception:
            log.exception("matrix: handling event %s failed", event_id)

    async def _chat(self, room_id: str, sender: str) -> Chat | None:
        """The conversation a room is for us: a group room, a direct chat, or none.

        A direct chat is one person's, the one who opened it with us, and only while no
        one else is in it: what the bot says there is private (balances, receipts).
        """
        if room_id in self.groups:
            return Chat(PLATFORM, room_id, ChatKind.GROUP)
        known = self._rooms.get(room_id)
        room = self.client.rooms.get(room_id) if self.client else None
        if known is not None and known.startswith("direct:"):
            if known != f"direct:{sender}" or (room is not None and room.member_count > 2):
                log.warning("matrix: ignored %s in %s: not their own direct chat", sender, room_id)
                return None
            return Chat(PLATFORM, room_id, ChatKind.DIRECT)
        if known is None and room is not None and room.member_count <= 2:
            await self._direct_room(sender, room_id)  # a two-person room we did not know yet
            return Chat(PLATFORM, room_id, ChatKind.DIRECT)
        return None

    async def _wait_for_key(self, chat: Chat, room_id: str, event: dict[str, Any]) -> None:
        """An encrypted message nio could not decrypt: its room key may still come (a
        to-device message can arrive a sync later); it is tried again after each sync.

        Kept in the platform store until then, so a restart (the checkpoint is past
        it) still handles it or tells its sender.
        """
        event_id = event["event_id"]
        if event_id in self._undecrypted:
            return
        if len(self._undecrypted) >= 1000:
            await self._forget_undecrypted(next(iter(self._undecrypted)))
        event = {**event, "room_id": room_id}
        self._undecrypted[event_id] = (chat, event, time.monotonic())
        kept = {"kind": chat.kind.value, "event": event, "at": time.time()}
        await self._db(self.store.set_state, f"undecrypted:{event_id}", json.dumps(kept))
        await self._request_key(event)

    async def _request_key(self, event: dict[str, Any]) -> None:
        """Ask the sender's devices for the room key (``m.room_key_request``), once per
        session. Element sends it again to a device it had sent it to, so a key lost
        on the way (or with a store restored from a backup) still comes."""
        client = self.client
        megolm = MegolmEvent.from_dict(event)
        if client.olm is None or not isinstance(megolm, MegolmEvent):
            return
        session = megolm.session_id
        queued = {getattr(m, "session_id", None) for m in client.olm.outgoing_to_device_messages}
        if session in client.outgoing_key_requests or session in queued:
            return
        # Queued in nio's own list: sending it from there registers the request, so
        # the answer is taken (see _accept_keys_from_their_creator).
        client.olm.outgoing_to_device_messages.append(
            megolm.as_key_request(megolm.sender, client.device_id)
        )
        async with self._crypto:
            await self._until_up(client.send_to_device_messages)

    async def _forget_undecrypted(self, event_id: str) -> None:
        self._undecrypted.pop(event_id, None)
        await self._db(self.store.set_state, f"undecrypted:{event_id}", None)

    def _restore_undecrypted(self, kept: dict[str, str]) -> None:
        """The messages still waiting for their key when the bot stopped (its wait goes on)."""
        now, wall = time.monotonic(), time.time()
        for event_id, text in kept.items():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                value = json.loads(text)
                event = value["event"]
                chat = Chat(PLATFORM, event["room_id"], ChatKind(value["kind"]))
                waited = max(0.0, wall - float(value["at"]))
                self._undecrypted[event_id] = (chat, event, now - waited)

    def _note_withheld(self, events: list[Any]) -> None:
        """Room keys a member's device tells us it won't send (``m.room_key.withheld``)."""
        for event in events:
            source = getattr(event, "source", None) or {}
            content = source.get("content") or {}
            session = content.get("session_id")
            if source.get("type") == "m.room_key.withheld" and isinstance(session, str):
                if len(self._withheld) >= 1000:
                    self._withheld.pop(next(iter(self._withheld)))
                self._withheld[session] = str(content.get("code", ""))

    async def _retry_undecrypted(self) -> None:
        """Messages whose key came are handled now (the core claims each event id, so
        once); one whose key stays away (or is withheld) gets one plain notice to its
        sender."""
        now = time.monotonic()
        for event_id, (chat, event, since) in list(self._undecrypted.items()):
            decrypted = None
            with contextlib.suppress(EncryptionError, ValueError, LocalProtocolError):
                decrypted = self.client.decrypt_event(MegolmEvent.from_dict(event))
            source = getattr(decrypted, "source", None)
            withheld = self._withheld.get(str(event.get("content", {}).get("session_id")))
            if isinstance(source, dict) and source.get("type") != "m.room.encrypted":
                await self._forget_undecrypted(event_id)
                await self._on_event(event["room_id"], {**source, DECRYPTED: True})
            elif withheld is not None or now - since >= self.tuning.undecryptable_after:
                await self._forget_undecrypted(event_id)
                log.warning(
                    "matrix: an encrypted message from %s stayed unreadable (%s)",
                    event.get("sender"),
                    f"its room key was withheld: {withheld}" if withheld else "no room key",
                )
                self._tell_undecryptable(chat, event_id)

    def _tell_undecryptable(self, chat: Chat, event_id: str) -> None:
        now = time.monotonic()
        last = self._told_encrypted.get(chat.chat_id)
        if last is not None and now - last < self.tuning.encrypted_every:
            return
        self._told_encrypted[chat.chat_id] = now
        text = self.translators[self.language]("matrix.undecryptable", group=self.group_name)
        assert self._hub is not None
        self._hub.post(Outgoing(ToChat(chat), text, reply_to_event=event_id))

    async def _on_reaction(self, chat: Chat, event: dict[str, Any]) -> None:
        relates = event.get("content", {}).get("m.relates_to", {})
        key = str(relates.get("key", "")).replace("\ufe0f", "")
        offered = await self._db(self.store.state, f"choices:{relates.get('event_id')}")
        if offered is not None:
            answers: list[str] = json.loads(offered)
            keys = [k.replace("\ufe0f", "") for k in KEYCAPS[: len(answers)]]
            if key in keys:
                await self._submit(chat, event, answers[keys.index(key)], (), None, pressed=True)
            return
        word = next((w for emoji, w in REACTIONS.items() if key.startswith(emoji)), None)
        question, _, asked = self._asking.get(str(relates.get("event_id")), "").partition(" ")
        if word is None or asked != event["sender"]:
            return  # a reaction to something else, or by someone who wasn't asked
        await self._submit(chat, event, word, (), None, answers=int(question))

    async def _on_message(self, chat: Chat, event: dict[str, Any]) -> None:
        content = event.get("content", {})
        if content.get("msgtype") != "m.text":
            return  # notices (other bots), emotes, files
        relates = content.get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace":
            return  # an edit never re-runs a command
        text = self._text(content)
        text, mentions = self._mentions(chat.chat_id, text, content)
        reply_to = None
        replied = (relates.get("m.in_reply_to") or {}).get("event_id")
        if replied:
            reply_to = await self._author(chat.chat_id, replied)
        if chat.kind is ChatKind.DIRECT and self._dms.get(event["sender"]) != chat.chat_id:
            await self._direct_room(event["sender"], chat.chat_id)
        question = self._asking.get(replied or "", "").partition(" ")[0]
        answers = int(question) if question else None  # a reply answers exactly that question
        await self._submit(chat, event, text, mentions, reply_to, answers=answers)

    async def _submit(
        self,
        chat: Chat,
        event: dict[str, Any],
        text: str,
        mentions: tuple[Mention, ...],
        reply_to: Identity | None,
        *,
        pressed: bool = False,
        answers: int | None = None,
    ) -> None:
        sender = event["sender"]
        incoming = Incoming(
            platform=PLATFORM,
            event_id=event["event_id"],
            chat=chat,
            sender=Identity(PLATFORM, sender),
            sender_name=self._name(chat.chat_id, sender),
            text=text,
            mentions=mentions,
            reply_to=reply_to,
            pressed=pressed,
            answers=answers,
        )
        assert self._hub is not None
        result = await self._hub.submit(incoming)
        for question in result.closed:
            await self._forget_question(question)

    def _name(self, room_id: str, user_id: str) -> str:
        room = self.client.rooms.get(room_id) if self.client else None
        name = room.user_name(user_id) if room is not None else None
        return str(name) if name else user_id.split(":")[0].lstrip("@")

    @staticmethod
    def _text(content: dict[str, Any]) -> str:
        """The text as typed: pills become the member's full user id, reply quotes go."""
        formatted = content.get("formatted_body")
        if not isinstance(formatted, str) or content.get("format") != HTML:
            formatted = ""
        if formatted and (_PILL.search(formatted) or "<mx-reply" in formatted.lower()):
            body = _REPLY_HTML.sub("", formatted)
            body = _PILL.sub(lambda m: html.unescape(m.group(1)), body)
            body = _TAG.sub("", _BREAK.sub("\n", body))
            return html.unescape(body).strip()
        body = str(content.get("body", ""))
        lines = body.split("\n")
        if lines and lines[0].startswith("> <"):  # a reply fallback: "> <@who> quoted", ""
            while lines and lines[0].startswith(">"):
                lines.pop(0)
            if lines and not lines[0].strip():
                lines.pop(0)
        return "\n".join(lines).strip()

    def _mentions(
        self, room_id: str, text: str, content: dict[str, Any]
    ) -> tuple[str, tuple[Mention, ...]]:
        """Members named by a full user id (typed, or a pill), or in ``m.mentions``."""
        listed = (content.get("m.mentions") or {}).get("user_ids") or []
        for user_id in listed:
            if not isinstance(user_id, str) or user_id in text or user_id == self.user_id:
                continue
            name = self._name(room_id, user_id)
            for shown in (f"@{name}", name):  # a client that puts only the name in the body
                if shown and shown in text:
                    text = text.replace(shown, user_id, 1)
                    break
        mentions: list[Mention] = []
        for word in text.split():
            core = word.rstrip(_TRAILING)
            if _MXID.fullmatch(core) and core != self.user_id:
                mentions.append(Mention(word, Identity(PLATFORM, core)))
        return text, tuple(mentions)

    async def _author(self, room_id: str, event_id: str) -> Identity | None:
        sender = self._authors.get(event_id)
        if sender is None:
            try:
                found = await self.client.room_get_event(room_id, event_id)
            except _NETWORK:
                return None
            sender = getattr(getattr(found, "event", None), "sender", None)
        if not sender or sender == self.user_id:
            return None
        return Identity(PLATFORM, sender)

    # sending -----------------------------------------------------------------------
    def lane(self, target: Target) -> str:
        if isinstance(target, ToChat):
            return target.chat.chat_id
        if isinstance(target, ToPerson):
            return target.identity.user_id
        return "groups"

    async def send(self, outgoing: Outgoing, origin: Incoming | None) -> None:
        target = outgoing.target
        if isinstance(target, ToAllGroups):
            for room_id in self.groups:
                await self._deliver(room_id, outgoing, None)
        elif isinstance(target, ToChat):
            reply = outgoing.reply_to_event if target.chat.is_group else None
            await self._deliver(target.chat.chat_id, outgoing, reply)
        elif target.identity.platform == PLATFORM:
            direct = await self._direct_with(target.identity.user_id)
            if direct is not None:
                await self._deliver(direct, outgoing, None)

    async def _direct_with(self, user_id: str) -> str | None:
        """Our direct room with a person, opened (and the person invited) when there is none."""
        known = self._dms.get(user_id)
        if known is not None:
            return known
        created = await self._until_up(
            lambda: self.client.room_create(
                is_direct=True, invite=[user_id], preset=RoomPreset.trusted_private_chat
            )
        )
        if not isinstance(created, RoomCreateResponse):
            log.warning("matrix: can't open a direct chat with %s: %s", user_id, created)
            return None
        # nio sends only to rooms it knows, and learns of this one at the next sync:
        # a room we just made without encryption is known as such already.
        self.client.rooms.setdefault(
            created.room_id, MatrixRoom(created.room_id, self.client.user_id)
        )
        await self._direct_room(user_id, created.room_id)
        return str(created.room_id)

    def _content(self, outgoing: Outgoing, reply_to: str | None) -> dict[str, Any]:
        text = outgoing.text
        if outgoing.choices and outgoing.asked is None:  # offered to anyone: reactions
            shown = zip(KEYCAPS, outgoing.choices, strict=False)  # at most ten
            options = "\n".join(f"{key} {escape(c.label)}" for key, c in shown)
            hint = self.translators[self._language_of(outgoing)]("matrix.choose_reaction")
            text = f"{text}\n\n{options}\n{hint}"
        elif outgoing.choices:
            language = self._language_of(outgoing)
            options = "\n".join(
                f"{n}. {escape(c.label)}" for n, c in enumerate(outgoing.choices, 1)
            )
            hint = self.translators[language]("matrix.choose")
            text = f"{text}\n\n{options}\n{hint}"
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": to_plain(text),
            "format": HTML,
            "formatted_body": to_html(text).replace("\n", "<br>"),
            "m.mentions": {},  # replies ping nobody by accident
        }
        if reply_to is not None and reply_to.startswith("$"):
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return content

    def _language_of(self, outgoing: Outgoing) -> str:
        language = outgoing.language
        return language if language is not None and language in self.translators else self.language

    async def _deliver(self, room_id: str, outgoing: Outgoing, reply_to: str | None) -> None:
        if outgoing.image is not None:
            await self._send_picture(room_id, outgoing, reply_to)
            return
        if outgoing.secret and room_id in self.groups:  # everyone sees who reacted what
            outgoing = dataclasses.replace(outgoing, choices=())
        content = self._content(outgoing, reply_to)
        event_id = await self._room_send(room_id, content, tx_id=_tx_id(outgoing))
        asked = outgoing.asked
        if event_id is not None and outgoing.question is not None and asked is not None:
            await self._ask(event_id, outgoing.question, asked.user_id)
        elif event_id is not None and outgoing.choices and asked is None:
            await self._offer(room_id, event_id, outgoing)

    async def _offer(self, room_id: str, event_id: str, outgoing: Outgoing) -> None:
        """Remember what each reaction under ``event_id`` runs, and put the reactions there."""
        answers = [c.answer for c in outgoing.choices if c.is_command][: len(KEYCAPS)]
        await self._db(self.store.set_state, f"choices:{event_id}", json.dumps(answers))
        base = _tx_id(outgoing)
        for number, key in enumerate(KEYCAPS[: len(answers)]):
            relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
            tx_id = None if base is None else f"{base}-{number}"
            await self._room_send(room_id, {"m.relates_to": relation}, "m.reaction", tx_id=tx_id)

    async def _send_picture(self, room_id: str, outgoing: Outgoing, reply_to: str | None) -> None:
        """A chart: uploaded to the media repository, then an ``m.image`` with its alt text as body.

        A picture that can't be uploaded is dropped (and logged): the text
        sent before it carries the same figures.
        """
        image = outgoing.image
        assert image is not None
        room = self.client.rooms.get(room_id)
        encrypted = room is not None and room.encrypted
        # In an encrypted room the picture is uploaded encrypted too (AES-CTR, nio's
        # attachment helper); its key travels in the Megolm-encrypted event.
        data, secret = encrypt_attachment(image.data) if encrypted else (image.data, {})

        async def upload() -> Any:
            answer, _ = await self.client.upload(
                io.BytesIO(data),
                content_type="application/octet-stream" if encrypted else "image/png",
                filename=image.name,
                filesize=len(data),
            )
            return answer

        try:
            uploaded = await asyncio.wait_for(self._until_up(upload), self.tuning.send_give_up)
        except TimeoutError:
            uploaded = None
        if not isinstance(uploaded, UploadResponse):
            log.warning("matrix: a picture for %s could not be uploaded: %s", room_id, uploaded)
            return
        where = (
            {"file": {"url": uploaded.content_uri, **secret}}
            if encrypted
            else {"url": uploaded.content_uri}
        )
        content: dict[str, Any] = {
            "msgtype": "m.image",
            "body": image.alt,
            "filename": image.name,
            **where,
            "info": {
                "mimetype": "image/png",
                "size": len(image.data),
                "w": image.width,
                "h": image.height,
            },
            "m.mentions": {},
        }
        if reply_to is not None and reply_to.startswith("$"):
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        await self._room_send(room_id, content)

    async def _ask(self, event_id: str, question: int, user_id: str) -> None:
        """A reply or 👍/👎 to ``event_id`` by ``user_id`` answers ``question``."""
        self._asking[event_id] = f"{question} {user_id}"
        async with self._asking_written:
            await self._db(self.store.set_state, f"asking:{event_id}", self._asking[event_id])

    async def _forget_question(self, question: int) -> None:
        """An answered question: the messages that asked it answer nothing any more."""
        prefix = f"{question} "
        for event_id in [e for e, q in self._asking.items() if q.startswith(prefix)]:
            del self._asking[event_id]
            async with self._asking_written:
                await self._db(self.store.set_state, f"asking:{event_id}", None)

    async def _room_send(
        self,
        room_id: str,
        content: dict[str, Any],
        kind: str = "m.room.message",
        *,
        tx_id: str | None = None,
    ) -> str | None:
        """One event, retried with one transaction id so the server keeps it once.

        ``tx_id``: an outbox message's, the same after a restart, so a message
        sent again after a crash is still kept once.
        """
        tx_id = tx_id or uuid.uuid4().hex
        delay = self.tuning.backoff_start
        limited = 0
        give_up = time.monotonic() + self.tuning.send_give_up
        while True:
            try:
                room = self.client.rooms.get(room_id)
                guard = self._crypto if room is not None and room.encrypted else _NO_GUARD
                async with guard:  # sharing a room key claims and queries keys too
                    answer = await self.client.room_send(
                        room_id, kind, content, tx_id=tx_id, ignore_unverified_devices=True
                    )
            except _NETWORK as error:
                answer = error
            if isinstance(answer, RoomSendResponse):
                self.health.ok()
                return str(answer.event_id)
            code = getattr(answer, "status_code", None)
            if code == "M_LIMIT_EXCEEDED":
                limited += 1
                if limited > self.tuning.limit_retries:
                    log.warning("matrix: still rate-limited in %s; a message was dropped", room_id)
                    return None
                wait = (getattr(answer, "retry_after_ms", None) or 1000) / 1000
                await asyncio.sleep(min(wait, self.tuning.limit_wait_max))
                continue
            if isinstance(answer, BaseException) or _server_trouble(answer):
                self.health.failed(
                    answer if isinstance(answer, BaseException) else RuntimeError(str(answer))
                )
                if time.monotonic() > give_up:
                    log.warning("matrix: the homeserver stayed away; a message was dropped")
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            log.warning("matrix: a message to %s was refused: %s", room_id, answer)
            return None

    @staticmethod
    async def _db(function: Callable[..., T], *args: Any) -> T:
        """The platform store's calls are short transactions; they run off the event loop."""
        return await asyncio.to_thread(function, *args)


def _accept_keys_from_their_creator(olm: Any) -> None:
    """Also take a room key we asked for when the device that made the session sends it.

    nio takes forwarded room keys only from the bot's own devices (it has one),
    but the answer to a key request comes from the member's device, forwarded
    (``m.forwarded_room_key``). When that device is the session's own creator
    (its Olm key is the session's sender key, no one forwarded it before), the
    key is as good as the ``m.room_key`` it first sent.
    """
    if olm is None:
        return
    nio_check = olm._should_accept_forward

    def check(sender: str, sender_key: str, event: Any) -> bool:
        if nio_check(sender, sender_key, event):
            return True
        content = (getattr(event, "source", None) or {}).get("content") or {}
        asked = olm.outgoing_key_requests.get(event.session_id)
        return bool(
            asked is not None
            and event.algorithm == MEGOLM
            and asked.room_id == event.room_id
            and content.get("sender_key") == sender_key
            and not content.get("forwarding_curve25519_key_chain")
            and olm.device_store.device_from_sender_key(sender, sender_key) is not None
        )

    olm._should_accept_forward = check


def _tx_id(outgoing: Outgoing) -> str | None:
    """A transaction id derived from the outbox row: stable across restarts, never reused."""
    return None if outgoing.outbox_id is None else f"letsbot-outbox-{outgoing.outbox_id}"


class _SyncFailed(Exception):
    """The homeserver answered /sync with an error."""


def _server_trouble(answer: Any) -> bool:
    """An error answer that means "try again later" (a proxy's 502 while Synapse restarts)."""
    status = getattr(answer, "transport_response", None)
    code = getattr(status, "status", None)
    return isinstance(code, int) and code >= 500


# doctor ------------------------------------------------------------------------

MESSAGE_EVENT = ".".join(("m", "room", "message"))
MEGOLM = "m.megolm.v1.aes-sha2"  # the room encryption matrix-nio reads


async def diagnose(section: MatrixSection) -> list[Check]:
    """``letsbot doctor`` for Matrix: the login, and in each group room: joined, may send.

    A password login is tried with its own device, logged out again at the
    end, so no device is left behind; an access token is checked with whoami.
    """
    client = AsyncClient(
        section.homeserver,
        section.user_id,
        config=AsyncClientConfig(
            max_limit_exceeded=0,
            max_timeouts=0,
            encryption_enabled=False,
            store_sync_tokens=False,
            request_timeout=20,
        ),
    )
    logged_in = False
    checks: list[Check] = []
    try:
        login = await _diagnose_login(client, section)
        checks.append(login)
        if not login.ok:
            return checks
        logged_in = not section.token()
        joined = await client.joined_rooms()
        rooms = set(joined.rooms) if isinstance(joined, JoinedRoomsResponse) else set()
        if not section.group_rooms:
            checks.append(
                Check.failed(
                    "matrix rooms",
                    "matrix.group_rooms is empty: the bot serves no group room",
                    "put the group room's id or alias in matrix.group_rooms",
                )
            )
        room_keys = await asyncio.to_thread(
            matrix_store.room_keys, section.store_path, section.user_id
        )
        for room in section.group_rooms:
            checks.extend(await _diagnose_room(client, section.user_id, room, rooms, room_keys))
        checks.extend(await _diagnose_encryption(client, section))
        return checks
    except _NETWORK as error:
        checks.append(
            Check.failed(
                "matrix homeserver",
                f"can't reach {section.homeserver} ({type(error).__name__})",
                "check matrix.homeserver and the server's internet connection",
            )
        )
        return checks
    finally:
        if logged_in:
            with contextlib.suppress(*_NETWORK):
                await client.logout()
        await client.close()


async def _diagnose_login(client: AsyncClient, section: MatrixSection) -> Check:
    user = section.user_id
    token = section.token()
    if token:
        client.access_token = token
        whoami = await client.whoami()
        if not isinstance(whoami, WhoamiResponse):
            return Check.failed(
                "matrix login",
                f"the homeserver refused matrix.access_token ({_code(whoami)})",
                "make a new access token for the bot's account and put it in"
                " LETSBOT_MATRIX__ACCESS_TOKEN (or use a password instead)",
            )
        if whoami.user_id != user:
            return Check.failed(
                "matrix login",
                f"matrix.access_token belongs to {whoami.user_id}, not to {user}",
                "set matrix.user_id to the bot's account, or use that account's token",
            )
        return Check.passed("matrix login", f"the access token of {user} is valid")
    answer = await client.login(
        section.login_password(), device_name=f"{section.device_name} doctor"
    )
    if not isinstance(answer, LoginResponse):
        return Check.failed(
            "matrix login",
            f"the homeserver refused the login of {user} ({_code(answer)})",
            "check matrix.user_id and the password (LETSBOT_MATRIX__PASSWORD or password_file)",
        )
    return Check.passed("matrix login", f"{user} logs in with its password")


async def _diagnose_room(
    client: AsyncClient, user: str, room: str, joined: set[str], room_keys: dict[str, int] | None
) -> list[Check]:
    name = f"matrix room {room}"
    room_id = room
    if room.startswith("#"):
        resolved = await client.room_resolve_alias(room)
        if not isinstance(resolved, RoomResolveAliasResponse):
            return [
                Check.failed(
                    name,
                    "the homeserver knows no room with this alias",
                    "check the alias in matrix.group_rooms, or use the room id"
                    " (Element: Room settings, Advanced)",
                )
            ]
        room_id = resolved.room_id
    if room_id not in joined:
        return [
            Check.failed(
                name,
                "the bot is not in this room",
                f"invite {user} to the room; 'letsbot run' then joins it",
            )
        ]
    checks = [Check.passed(name, "the bot is in the room")]
    rights = f"matrix rights in {room}"
    levels = await client.room_get_state_event(room_id, "m.room.power_levels")
    content = levels.content if isinstance(levels, RoomGetStateEventResponse) else {}
    level = content.get("users", {}).get(user, content.get("users_default", 0))
    needed = content.get("events", {}).get(MESSAGE_EVENT, content.get("events_default", 0))
    if level < needed:
        checks.append(
            Check.failed(
                rights,
                f"the bot's power level {level} is below the {needed} needed to send messages",
                "let the bot send messages (Element: Room settings, Roles & Permissions)",
            )
        )
    else:
        checks.append(Check.passed(rights, f"the bot may send messages (power level {level})"))
    encryption = await client.room_get_state_event(room_id, "m.room.encryption")
    content = encryption.content if isinstance(encryption, RoomGetStateEventResponse) else {}
    checks.append(_diagnose_room_keys(room, room_id, content, room_keys))
    return checks


def _diagnose_room_keys(
    room: str, room_id: str, encryption: dict[str, Any], room_keys: dict[str, int] | None
) -> Check:
    """Whether the bot can read the room: unencrypted, or encrypted in a way it reads and
    with room keys members' devices sent to its device (counted in its store)."""
    name = f"matrix encryption in {room}"
    algorithm = encryption.get("algorithm")
    if not algorithm:
        return Check.passed(name, "the room is not encrypted; the bot reads it as it is")
    if algorithm != MEGOLM:
        return Check.failed(
            name,
            f"the room is encrypted with {algorithm}, which the bot can't read",
            "use a room with Element's usual encryption (Megolm) for the group",
        )
    if room_keys is None:
        return Check.passed(
            name, "the room is encrypted; the bot reads it with the keys 'letsbot run' makes"
        )
    senders = room_keys.get(room_id, 0)
    if not senders:
        return Check.passed(
            name,
            "the room is encrypted; the bot holds no room key of it yet: members' devices send"
            " it one with their next message (while its device is cross-signed, see below)",
        )
    return Check.passed(
        name,
        f"the room is encrypted; the bot reads it with room keys from {senders}"
        f" member device{'s' if senders != 1 else ''}",
    )


async def _diagnose_encryption(client: AsyncClient, section: MatrixSection) -> list[Check]:
    """The encryption store (a private folder, its pickle key) and the cross-signing keys."""
    name = "matrix encryption store"
    folder = section.store_path
    if folder is None:
        return [
            Check.failed(
                name,
                "matrix.store_path is not set",
                "set matrix.store_path to a private folder for the bot's encryption keys",
            )
        ]
    configured = bool(section.secret("pickle_key"))
    key_source = (
        "the pickle key from matrix.pickle_key"
        if configured
        else "the pickle key kept in the folder (set matrix.pickle_key to keep it apart)"
    )
    if not folder.exists():
        made = Check.passed(name, f"{folder} is made at the first 'letsbot run'; {key_source}")
        return [made, await _diagnose_cross_signing(client, section, None)]
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        return [
            Check.failed(
                name,
                f"others may read {folder} (mode {mode:o})",
                f"chmod 700 {folder} (the bot does it at its next start)",
            )
        ]
    checks = [Check.passed(name, f"{folder} is private (mode 700); {key_source}")]
    try:
        key = (
            matrix_store.pickle_key(section, folder)
            if configured or (folder / matrix_store.KEY_FILE).exists()
            else ""
        )
        keys = matrix_signing.load(folder, key) if key else None
    except (matrix_signing.SealError, matrix_store.StoreError) as error:
        checks.append(
            Check.failed(
                "matrix cross-signing",
                str(error),
                "use the pickle key the store was made with",
            )
        )
        return checks
    checks.append(await _diagnose_cross_signing(client, section, keys))
    return checks


async def _diagnose_cross_signing(
    client: AsyncClient, section: MatrixSection, keys: matrix_signing.CrossSigningKeys | None
) -> Check:
    name = "matrix cross-signing"
    how = (
        "run 'letsbot run' with matrix.password set: the homeserver asks for it to publish the keys"
    )
    user = section.user_id
    _, query = await _call(client, "POST", "/keys/query", {"device_keys": {user: []}})
    published = (query.get("master_keys") or {}).get(user, {}).get("keys", {})
    if published and (keys is None or keys.master.key_id not in published):
        # Never replaced by the bot: restored with the recovery key, or left as they are.
        what = "the account already has cross-signing keys that the store doesn't hold"
        recovery_key = section.secret("recovery_key")
        if recovery_key:
            # Tried now, reading only: a mistyped or wrong key is said here, not at the run.
            try:
                await matrix_recovery.restore(
                    lambda method, path, body: _call(client, method, path, body),
                    user,
                    matrix_recovery.decode_recovery_key(recovery_key),
                )
            except matrix_recovery.RecoveryError as error:
                return Check.failed(
                    name,
                    f"{what}, and the recovery key given can't restore them ({error})",
                    "give the recovery key the keys were saved with",
                )
            return Check.passed(name, f"{what}; the next 'letsbot run' restores them")
        return Check.failed(
            name,
            what,
            HINTS[matrix_signing.Outcome.NEEDS_RECOVERY_KEY].removeprefix("; "),
        )
    if keys is None:
        return Check.passed(name, "the keys are made at the first 'letsbot run'")
    if not published:
        return Check.failed(name, "the keys in the store are not published yet", how)
    devices = (query.get("device_keys") or {}).get(user, {})
    ssk = keys.self_signing
    signed = sorted(
        device_id
        for device_id, device in devices.items()
        if matrix_signing.verify(device, user, ssk.key_id, ssk.public)
    )
    if not signed:
        return Check.failed(name, "the keys are published, but no device of the bot is signed", how)
    recovery = section.store_path and section.store_path / matrix_signing.RECOVERY_FILE
    kept = (
        f"; its recovery key is in {recovery}: keep a copy apart from the store"
        if recovery and recovery.exists()
        else ""
    )
    return Check.passed(name, f"published; the bot's device {', '.join(signed)} is signed{kept}")


async def _call(
    client: AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    """A client-server API call nio has no method for; its status and JSON answer."""
    answer = await client.send(
        method,
        MATRIX_API_PATH_V3 + path,
        None if body is None else json.dumps(body),
        headers={
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        },
    )
    try:
        data = await answer.json(content_type=None)
    except ValueError:
        data = None
    return int(answer.status), data if isinstance(data, dict) else {}


def _code(answer: Any) -> str:
    """The Matrix error code of an error answer (M_FORBIDDEN), or its type."""
    code = getattr(answer, "status_code", None)
    return str(code) if code else type(answer).__name__


# What the composition root needs to serve Matrix (listed in app/platforms.py).
DESCRIPTOR = Platform(PLATFORM, MatrixSection, MatrixTransport, diagnose)
