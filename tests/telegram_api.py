"""A Telegram Bot API server on loopback, for tests.

It speaks the real HTTP protocol (``POST /bot<token>/<method>``, form-encoded,
nested values as JSON strings, ``{"ok": ..., "result": ...}`` answers) so the
real python-telegram-bot Application runs against it through ``base_url``.
Tests play the people: they write messages, edit them, press buttons; the
server queues the updates for getUpdates (long polling, offset confirms) and
records what the bot sends. It can answer like Telegram does when things go
wrong: 429 with retry_after, 403 for a person who never started the bot, 400
with migrate_to_chat_id for a group that became a supergroup, 502 in an outage.

Updates are delivered whatever ``allowed_updates`` asked for, so a test sees
what the bot itself does with an edited message.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, TypeVar

from aiohttp import web

TOKEN = "4242:AAH-secret-test-token-do-not-log"
BOT_ID = 4242
BOT_USERNAME = "letsbot_test_bot"
ANONYMOUS_ADMIN = 1087968824
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

T = TypeVar("T")
Json = dict[str, Any]


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Person:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str = "nl"
    is_bot: bool = False

    def user(self) -> Json:
        data: Json = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["language_code"] = self.language_code
        return data


BOT = Person(BOT_ID, "LETS bot", username=BOT_USERNAME, is_bot=True)
GROUP_ANONYMOUS_BOT = Person(ANONYMOUS_ADMIN, "Group", username="GroupAnonymousBot", is_bot=True)


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class Failure:
    """A scripted error answer for the next ``times`` calls of ``method`` (to ``chat_id``)."""

    method: str
    chat_id: int | None
    code: int
    description: str
    parameters: Json | None = None
    times: int = 1


@dataclass
class Sent:
    """A message the bot sent, as Telegram stored it."""

    message: Json
    html: str
    at: float  # time.monotonic() when accepted

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def text(self) -> str:
        return str(self.message["text"])

    @property
    def buttons(self) -> list[tuple[str, str]]:
        markup = self.message.get("reply_markup") or {}
        return [
            (b["text"], b["callback_data"])
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]

    @property
    def reply_to(self) -> int | None:
        replied = self.message.get("reply_to_message")
        return int(replied["message_id"]) if replied else None


@dataclass
class Photo:
    """A photo the bot sent: the bytes as uploaded, and the message Telegram made of it."""

    message: Json
    data: bytes
    filename: str
    caption_html: str
    at: float

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def caption(self) -> str:
        return str(self.message.get("caption", ""))

    @property
    def reply_to(self) -> int | None:
        replied = self.message.get("reply_to_message")
        return int(replied["message_id"]) if replied else None


_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "s": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
}
_VALID_TAG = re.compile(r"</?([a-z]+)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


class _Html(HTMLParser):
    """Telegram's HTML parse mode: the text and its entities (offsets in UTF-16 units)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.open: list[tuple[str, int, dict[str, str | None]]] = []
        self.entities: list[Json] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )
        self.open.append((tag, self.size, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unexpected end tag "{tag}"')
        _, start, attrs = self.open.pop()
        if self.size == start:
            return
        entity: Json = {"type": _TAGS[tag], "offset": start, "length": self.size - start}
        if tag == "a":
            href = attrs.get("href") or ""
            if href.startswith("tg://user?id="):
                user_id = int(href.split("=", 1)[1])
                entity = {
                    **entity,
                    "type": "text_mention",
                    "user": {"id": user_id, "is_bot": False, "first_name": "?"},
                }
            else:
                entity["url"] = href
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.size += units(data)


def parse_html(text: str) -> tuple[str, list[Json]]:
    bare = _VALID_TAG.sub("", text)
    if "<" in bare or ">" in bare or "&" in _ENTITY.sub("", bare):
        raise ApiError(400, "Bad Request: can't parse entities: unescaped <, > or &")
    parser = _Html()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ApiError(
            400, f"Bad Request: can't parse entities: Can't find end tag for {parser.open[-1][0]}"
        )
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


class FakeTelegram:
    """The Bot API on 127.0.0.1 and the people who use the bot."""

    def __init__(self) -> None:
        self.token = TOKEN
        self.base_url = ""
        self.chats: dict[int, Json] = {}
        self.messages: dict[tuple[int, int], Json] = {}
        self.pending: list[Json] = []  # updates not yet confirmed by an offset
        self.confirmed: dict[int, Json] = {}
        self.sent: list[Sent] = []
        self.photos: list[Photo] = []  # kept apart from ``sent``: a photo has no text
        self.edits: list[Json] = []
        self.answers: list[Json] = []
        self.commands: list[Json] = []
        self.calls: list[tuple[str, Json]] = []
        self.failures: list[Failure] = []
        self.not_started: set[int] = set()  # people who never pressed Start in the bot's chat
        self.migrated: dict[int, int] = {}
        self.down = False  # an outage: every request gets 502
        # Telegram slow to take a message: each sendMessage waits this long before it
        # is stored, so replies stay in flight a while (a dropped connection loses it).
        self.send_delay = 0.0
        self.refused: list[tuple[str, int]] = []  # (method, status) of each error answered
        self.fetched: set[int] = set()  # update ids getUpdates has handed out
        self._update_ids = itertools.count(5001)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._query_ids = itertools.count(70001)
        self._answered: set[str] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # server -----------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"

    async def close(self) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy (checked after every change); its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (value := predicate()):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return value

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = request.match_info["method"]
        params: Json = dict(await request.post())
        self.calls.append((method, params))
        self._notify()
        try:
            if self.down:
                raise ApiError(502, "Bad Gateway")
            self._scripted("getUpdates", params)  # e.g. 409 when another poll arrives
            self._scripted(method, params)
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
            return _answer(200, {"ok": True, "result": result})
        except ApiError as error:
            self.refused.append((method, error.code))
            body: Json = {"ok": False, "error_code": error.code, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            return _answer(error.code, body)
        finally:
            self._notify()

    def _scripted(self, method: str, params: Json) -> None:
        chat_id = int(params["chat_id"]) if "chat_id" in params else None
        for failure in self.failures:
            if failure.method == method and failure.chat_id in (None, chat_id) and failure.times:
                failure.times -= 1
                raise ApiError(failure.code, failure.description, failure.parameters)

    # scripting failures --------------------------------------------------------
    def outage(self, down: bool) -> None:
        """Telegram unreachable (502 for every request, open long polls too), or back."""
        self.down = down
        self._notify()

    def fail(self, method: str, code: int, description: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get this error (open long polls too)."""
        self.failures.append(Failure(method, None, code, description, times=times))
        self._notify()

    def flood(self, chat_id: int, retry_after: int = 1, times: int = 1) -> None:
        self.failures.append(
            Failure(
                "sendMessage",
                chat_id,
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
                times,
            )
        )

    # the Bot API ------------------------------------------------------------------
    async def api_getMe(self, params: Json) -> Json:
        return {
            **BOT.user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def api_getChat(self, params: Json) -> Json:
        chat = self._chat_of_bot(int(params["chat_id"]))
        return {
            **{k: v for k, v in chat.items() if k != "bot_status"},
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def api_getChatMember(self, params: Json) -> Json:
        chat = self._chat_of_bot(int(params["chat_id"]))
        user_id = int(params["user_id"])
        if user_id != BOT_ID:
            return {"status": "member", "user": {"id": user_id, "is_bot": False, "first_name": "?"}}
        status = chat.get("bot_status", "member")
        member: Json = {"status": status, "user": BOT.user()}
        if status == "kicked":
            member["until_date"] = 0
        if status == "restricted":  # every right taken away
            rights = ("change_info", "invite_users", "pin_messages", "send_messages")
            rights += ("send_polls", "send_other_messages", "add_web_page_previews")
            rights += ("manage_topics", "send_audios", "send_documents", "send_photos")
            rights += ("send_videos", "send_video_notes", "send_voice_notes", "edit_tag")
            rights += ("react_to_messages",)
            member.update({f"can_{right}": False for right in rights})
            member.update(is_member=True, until_date=0)
        return member

    def _chat_of_bot(self, chat_id: int) -> Json:
        """A chat as the bot may ask about it; Telegram's errors for the others."""
        if chat_id in self.migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.get("bot_status") == "kicked":
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        return chat

    async def api_deleteWebhook(self, params: Json) -> bool:
        return True

    async def api_setMyCommands(self, params: Json) -> bool:
        self.commands.append(
            {
                "commands": json.loads(params["commands"]),
                "language_code": params.get("language_code"),
                "scope": json.loads(params["scope"]) if "scope" in params else None,
            }
        )
        return True

    async def api_getUpdates(self, params: Json) -> list[Json]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            for update in [u for u in self.pending if u["update_id"] < offset]:
                self.pending.remove(update)
                self.confirmed[update["update_id"]] = update
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.pending and not self._closing:
            if self.down:
                raise ApiError(502, "Bad Gateway")
            self._scripted("getUpdates", params)  # e.g. 409 when another poll arrives
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
        batch = self.pending[:limit]
        self.fetched.update(u["update_id"] for u in batch)
        return batch

    def _writable_chat(self, params: Json) -> Json:
        """The chat a send goes to, refused as Telegram refuses it."""
        chat_id = int(params["chat_id"])
        if chat_id in self.migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat["type"] == "private" and chat_id in self.not_started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    async def api_sendMessage(self, params: Json) -> Json:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        chat = self._writable_chat(params)
        raw = params["text"]
        text, entities = parse_html(raw) if params.get("parse_mode") == "HTML" else (raw, [])
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if units(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        reply_to = None
        if "reply_parameters" in params:
            reply_to = json.loads(params["reply_parameters"])["message_id"]
        message = self._store(
            chat,
            BOT,
            text,
            entities,
            reply_to=reply_to,
            reply_markup=json.loads(params["reply_markup"]) if "reply_markup" in params else None,
        )
        self.sent.append(Sent(json.loads(json.dumps(message)), raw, time.monotonic()))
        return message

    async def api_sendPhoto(self, params: Json) -> Json:
        """A photo uploaded as multipart form data (field ``photo``), recorded in ``photos``."""
        chat = self._writable_chat(params)
        upload = params.get("photo")
        if not isinstance(upload, web.FileField):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        data = upload.file.read()
        if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR chunk
        raw = str(params.get("caption", ""))
        caption, entities = parse_html(raw) if params.get("parse_mode") == "HTML" else (raw, [])
        if units(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        reply_to = None
        if "reply_parameters" in params:
            reply_to = json.loads(params["reply_parameters"])["message_id"]
        size = {"width": width, "height": height, "file_size": len(data)}
        extra: Json = {"photo": [{"file_id": f"photo{len(self.photos) + 1}", **size}]}
        if caption:
            extra["caption"] = caption
        if entities:
            extra["caption_entities"] = entities
        message = self._store(chat, BOT, None, [], reply_to=reply_to, **extra)
        self.photos.append(
            Photo(json.loads(json.dumps(message)), data, upload.filename, raw, time.monotonic())
        )
        return message

    def _own_message(self, params: Json) -> Json:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None or message["from"]["id"] != BOT_ID:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def api_editMessageText(self, params: Json) -> Json:
        message = self._own_message(params)
        text, entities = (
            parse_html(params["text"])
            if params.get("parse_mode") == "HTML"
            else (params["text"], [])
        )
        markup = json.loads(params["reply_markup"]) if "reply_markup" in params else None
        if text == message["text"] and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        message.update(text=text, entities=entities, edit_date=int(time.time()))
        _set_markup(message, markup)
        self.edits.append({"method": "editMessageText", **params})
        return message

    async def api_editMessageReplyMarkup(self, params: Json) -> Json:
        message = self._own_message(params)
        markup = json.loads(params["reply_markup"]) if "reply_markup" in params else None
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        _set_markup(message, markup)
        self.edits.append({"method": "editMessageReplyMarkup", **params})
        return message

    async def api_answerCallbackQuery(self, params: Json) -> bool:
        query_id = params["callback_query_id"]
        if query_id in self._answered:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._answered.add(query_id)
        self.answers.append(
            {
                "id": query_id,
                "text": params.get("text"),
                "show_alert": params.get("show_alert") == "true",
            }
        )
        return True

    # the people -----------------------------------------------------------------------
    def group(self, chat_id: int, title: str = "LETS Durme", kind: str = "group") -> int:
        self.chats[chat_id] = {"id": chat_id, "type": kind, "title": title}
        return chat_id

    def bot_in(self, chat_id: int, status: str) -> None:
        """The bot's standing in a group: member, administrator, restricted, left, kicked."""
        self.chats[chat_id]["bot_status"] = status

    def person(self, person: Person, *, started: bool = True) -> Person:
        """Someone Telegram knows; ``started=False``: never pressed Start in the bot's chat."""
        chat: Json = {"id": person.id, "type": "private", "first_name": person.first_name}
        if person.username:
            chat["username"] = person.username
        self.chats[person.id] = chat
        if not started:
            self.not_started.add(person.id)
        return person

    def say(
        self,
        person: Person,
        chat_id: int | None,
        text: str,
        *,
        reply_to: Json | Sent | None = None,
        text_mentions: dict[str, Person] | None = None,
        sender_chat: Json | None = None,
    ) -> Json:
        """``person`` writes ``text`` in ``chat_id`` (None: their direct chat with the bot)."""
        chat = self.chats[person.id if chat_id is None else chat_id]
        if chat["type"] == "private":
            self.not_started.discard(person.id)  # writing to the bot starts it
        encoded = text.encode("utf-16-le")

        def offset(index: int) -> int:
            return len(text[:index].encode("utf-16-le")) // 2

        entities: list[Json] = []
        command = re.match(r"/\S+", text)
        if command:
            entities.append({"type": "bot_command", "offset": 0, "length": offset(command.end())})
        for mention in re.finditer(r"(?<!\S)@\w+", text):
            entities.append(
                {
                    "type": "mention",
                    "offset": offset(mention.start()),
                    "length": offset(mention.end()) - offset(mention.start()),
                }
            )
        for shown, who in (text_mentions or {}).items():
            start = text.index(shown)
            entities.append(
                {
                    "type": "text_mention",
                    "offset": offset(start),
                    "length": units(shown),
                    "user": who.user(),
                }
            )
        assert len(encoded) % 2 == 0
        replied = reply_to.message if isinstance(reply_to, Sent) else reply_to
        message = self._store(
            chat,
            person,
            text,
            sorted(entities, key=lambda e: e["offset"]),
            reply_to=replied["message_id"] if replied else None,
            sender_chat=sender_chat,
        )
        self._queue({"message": message})
        return message

    def edit(self, message: Json, text: str) -> Json:
        """The author edits a message: Telegram sends an edited_message update."""
        edited = {**message, "text": text, "edit_date": int(time.time())}
        self.messages[(message["chat"]["id"], message["message_id"])] = edited
        self._queue({"edited_message": edited})
        return edited

    def press(self, person: Person, sent: Sent, label: str) -> str:
        """``person`` presses the button ``label`` under a bot message; the query id.

        The button is the one sent (a client may still show buttons just removed).
        """
        message = self.messages[(sent.chat_id, sent.message_id)]
        data = next(d for text, d in sent.buttons if text == label)
        query_id = str(next(self._query_ids))
        self._queue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": person.user(),
                    "message": json.loads(json.dumps(message)),
                    "chat_instance": f"ci{sent.chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def migrate(self, old: int, new: int, *, announce: bool = True) -> None:
        """The group becomes a supergroup; Telegram announces it with two service messages."""
        title = self.chats[old].get("title", "")
        self.group(new, title, "supergroup")
        self.migrated[old] = new
        if not announce:
            return
        admin = Person(1, "Admin")
        self._queue(
            {"message": self._store(self.chats[old], admin, None, [], migrate_to_chat_id=new)}
        )
        self._queue(
            {"message": self._store(self.chats[new], admin, None, [], migrate_from_chat_id=old)}
        )

    def redeliver(self, update_id: int) -> None:
        """An update confirmed before comes again (a crash before the offset was saved)."""
        update = self.confirmed.pop(update_id)
        self.pending.append(update)
        self.pending.sort(key=lambda u: u["update_id"])
        self._notify()

    def update_of(self, message: Json) -> int:
        """The id of the update that carried ``message``."""
        key = (message["chat"]["id"], message["message_id"])
        for update in [*self.pending, *self.confirmed.values()]:
            carried = update.get("message")
            if carried is not None and (carried["chat"]["id"], carried["message_id"]) == key:
                return int(update["update_id"])
        raise KeyError(key)

    def update_of_query(self, query_id: str) -> int:
        for update in [*self.pending, *self.confirmed.values()]:
            if update.get("callback_query", {}).get("id") == query_id:
                return int(update["update_id"])
        raise KeyError(query_id)

    def _queue(self, payload: Json) -> int:
        update_id = next(self._update_ids)
        self.pending.append({"update_id": update_id, **payload})
        self._notify()
        return update_id

    def _store(
        self,
        chat: Json,
        author: Person,
        text: str | None,
        entities: list[Json],
        *,
        reply_to: int | None = None,
        reply_markup: Json | None = None,
        sender_chat: Json | None = None,
        **extra: Any,
    ) -> Json:
        chat_id = int(chat["id"])
        ids = self._message_ids.setdefault(chat_id, itertools.count(1))
        message: Json = {
            "message_id": next(ids),
            "date": int(time.time()),
            "chat": dict(chat),
            "from": author.user(),
            **extra,
        }
        if text is not None:
            message["text"] = text
        if entities:
            message["entities"] = entities
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
        if reply_to is not None and (chat_id, reply_to) in self.messages:
            replied = dict(self.messages[(chat_id, reply_to)])
            replied.pop("reply_to_message", None)
            message["reply_to_message"] = replied
        _set_markup(message, reply_markup)
        self.messages[(chat_id, message["message_id"])] = message
        return message

    # what the bot did ---------------------------------------------------------------
    def photos_to(self, chat_id: int) -> list[Photo]:
        return [p for p in self.photos if p.chat_id == chat_id]

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def current(self, sent: Sent) -> Json:
        """The message as it is now, after edits."""
        return self.messages[(sent.chat_id, sent.message_id)]

    async def next_to(self, chat_id: int, after: int, timeout: float = 5.0) -> Sent:
        """The first message sent to ``chat_id`` after the first ``after`` ones."""
        found = await self.wait_for(lambda: self.sent_to(chat_id)[after:], timeout)
        return found[0]

    async def reply_containing(self, chat_id: int, text: str, timeout: float = 5.0) -> Sent:
        return (
            await self.wait_for(
                lambda: [s for s in self.sent_to(chat_id) if text in s.text], timeout
            )
        )[0]


def _set_markup(message: Json, markup: Json | None) -> None:
    if markup and markup.get("inline_keyboard"):
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _answer(status: int, body: Json) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def plain(sent_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", sent_html))
