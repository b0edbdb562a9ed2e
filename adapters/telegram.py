"""Telegram through python-telegram-bot 22: translates updates and replies, decides nothing.

In: new messages (never edits) and Ja/Nee button presses become ``Incoming``;
the event id is ``<chat id>:<message id>`` (``cb:<query id>`` for a press),
stored by the core with its effect, so a redelivered update does nothing. An
update is confirmed to Telegram only once it is handled, so a crash loses none.
Out: HTML in chunks of at most 4096 characters, Ja/Nee as inline buttons that
only the person asked can press, every request through PTB's rate limiter.

Telegram facts handled here: ``/cmd@botname``; text mentions, @usernames and
replies name members by numeric user id; a direct message Telegram refuses
(the person never started the bot) is held and announced in the group with a
deep link; a group that became a supergroup is followed to its new id; an
outage is retried with backoff and logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram import Chat as TgChat
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, TypeHandler
from telegram.request import HTTPXRequest

from letsbot.config import TelegramSection
from letsbot.doctor import Check
from letsbot.domain import Identity
from letsbot.errors import Busy
from letsbot.hub import Hub, PlatformStore, TransportError
from letsbot.i18n import LANGUAGES, Translator, catalog
from letsbot.markup import to_html, to_plain
from letsbot.messages import (
    Chat,
    ChatKind,
    Choice,
    Incoming,
    Mention,
    Outgoing,
    Target,
    ToAllGroups,
    ToChat,
    ToPerson,
)
from letsbot.platforms import Platform
from letsbot.registry import REGISTRY, Who

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: an admin writing as the group
TEXT_LIMIT = 4096  # characters (UTF-16 code units) after entities are parsed
CAPTION_LIMIT = 1024  # the same, for the caption of a photo
HELD = "held"  # the deep-link payload: /start held delivers what was kept
UPDATES = ["message", "callback_query"]  # no edited_message: an edit never re-runs a command
ANSWER_WORDS = {"yes": "ja", "no": "nee"}  # a button press is typed as this word
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram keeps
TOAST_LIMIT = 200  # characters answerCallbackQuery shows
_GROUP_TYPES = {TgChat.GROUP, TgChat.SUPERGROUP}
_ADDRESSED = re.compile(r"(/[^\s@]+)@(\S+)")
_MENU_WORD = re.compile(r"[a-z0-9_]{1,32}")
_MARK = re.compile(r"\\(.)|\*\*", re.DOTALL)
_NAME = "\ue000"  # stands for the person's name until it becomes a mention link
_UNCHANGED = {"busy", "failed", "unsure"}  # (perhaps) nothing changed: keep the buttons

T = TypeVar("T")


@dataclass(frozen=True)
class Tuning:
    """Telegram's limits (approximate, undocumented) and our patience; tests shrink them."""

    overall_rate: float = 30  # messages per overall_period, all chats together
    overall_period: float = 1
    group_rate: float = 20  # messages per group_period into one group
    group_period: float = 60
    retries_after_429: int = 10  # RetryAfter is waited out this often per request
    poll_timeout: float = 25  # long polling, seconds
    backoff_start: float = 0.5  # first wait after a network error, doubling
    backoff_max: float = 30
    link_every: float = 600  # seconds between two start links for one person


# text ------------------------------------------------------------------------


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _open_bold(markup: str) -> bool:
    """Whether a ``**`` is left open at the end of ``markup``."""
    return sum(1 for m in _MARK.finditer(markup) if m.group(1) is None) % 2 == 1


def _cut(line: str, limit: int) -> list[str]:
    """A markup line cut into pieces of at most ``limit`` visible units, escapes kept whole."""
    pieces: list[str] = []
    start = size = 0
    for match in re.finditer(r"\\.|\*\*|.", line, re.DOTALL):
        token = match.group()
        width = 0 if token == "**" else units(token[-1])
        if size + width > limit and match.start() > start:
            pieces.append(line[start : match.start()])
            start, size = match.start(), 0
        size += width
    pieces.append(line[start:])
    return pieces


def split_markup(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Markup text in chunks of at most ``limit`` visible units, cut at line ends.

    A line longer than the limit is cut inside; bold text that crosses a cut is
    closed at the end of one chunk and opened again in the next.
    """
    chunks: list[str] = []
    lines: list[str] = []
    size = 0
    bold = False

    def flush() -> None:
        nonlocal bold, lines, size
        chunk = ("**" if bold else "") + "\n".join(lines)
        bold = _open_bold(chunk)
        chunks.append(chunk)
        lines, size = [], 0

    for line in text.split("\n"):
        for piece in _cut(line, limit):
            width = units(to_plain(piece)) + (1 if lines else 0)
            if lines and size + width > limit:
                flush()
                width -= 1
            lines.append(piece)
            size += width
    flush()
    return chunks


def _span(encoded: bytes, offset: int, length: int) -> str:
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le")


def _seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# health ------------------------------------------------------------------------


class Health:
    """Logs a Telegram outage once when it starts and once when it ends, not per retry."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.down_since: float | None = None
        self._last_problem = ""

    def failed(self, error: Exception) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "telegram: can't reach the Bot API (%s); retrying with backoff",
                self.redact(str(error)),
            )

    def ok(self) -> None:
        if self.down_since is not None:
            log.warning(
                "telegram: the Bot API answers again, after %.0f s",
                time.monotonic() - self.down_since,
            )
            self.down_since = None

    def problem(self, error: TelegramError) -> None:
        """An error that is not a network failure (e.g. a second bot polling): once each."""
        text = self.redact(str(error))
        if text != self._last_problem:
            self._last_problem = text
            log.warning("telegram: %s: %s", type(error).__name__, text)

    def solved(self) -> None:
        """Polling works again: a later problem is worth a line again."""
        self._last_problem = ""

    def redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


class WatchedRequest(HTTPXRequest):
    """PTB's HTTP client, reporting to Health whether the Bot API answers."""

    def __init__(self, health: Health, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health = health

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except NetworkError as error:
            self.health.failed(error)
            raise
        if code >= 500:
            self.health.failed(NetworkError(f"HTTP {code}"))
        else:
            self.health.ok()
        return code, payload


# the transport -------------------------------------------------------------------


class TelegramTransport:
    """letsbot.hub.Transport for one Telegram bot."""

    platform = PLATFORM

    def __init__(
        self,
        section: TelegramSection,
        store: PlatformStore,
        translators: Mapping[str, Translator],
        *,
        language: str,
        group_name: str,
        tuning: Tuning | None = None,
    ) -> None:
        self.store = store
        self.translators = translators
        self.language = language
        self.group_name = group_name
        self.tuning = tuning or Tuning()
        self._token = section.bot_token()
        self._base_url = section.base_url
        self._configured = list(section.group_chat_ids)
        self.health = Health(self._token)
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._hub: Hub | None = None
        self.username = ""
        self.groups: set[int] = set()  # served group ids, migrations followed
        self._moved: dict[int, int] = {}  # old group id -> supergroup id
        self._handles: dict[str, str] = {}  # @handle (lower case) -> user id
        # question id -> "chat:message:language" of the message whose buttons answer it
        self._asking: dict[str, str] = {}
        # Writes of _asking in the order they were made: a slow one must not land
        # after a later one (a forgotten member's state would come back).
        self._asking_written = asyncio.Lock()
        self._told: set[int] = set()  # unserved groups told which group we serve
        self._holding: set[str] = set()  # people with held direct messages
        self._linked: dict[str, float] = {}  # person -> when the last start link was posted
        self._poller: asyncio.Task[None] | None = None
        self._offset: int | None = None  # the first update not yet handled
        self._stopping = False
        self._handling = False

    # lifecycle
    async def start(self, hub: Hub) -> str:
        self._hub = hub
        await self._load()
        app = self._build()
        self._app = app
        await self._until_up(app.initialize)  # getMe: also learns our @username
        self.username = app.bot.username
        await self._register_commands()
        await self._until_up(app.bot.delete_webhook)  # polling needs none; keeps pending updates
        await app.start()
        self._stopping = False
        self._poller = asyncio.create_task(self._poll(), name="telegram polling")
        groups = ", ".join(str(g) for g in sorted(self.groups)) or "none"
        return f"@{self.username}, groups {groups}"

    async def stop(self) -> None:
        """Stop fetching; the update being handled is finished and confirmed."""
        self._stopping = True
        poller, self._poller = self._poller, None
        if poller is not None:
            if not self._handling:
                poller.cancel()  # waiting for updates, or pausing after an error
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await self._confirm()
        if self._app is not None and self._app.running:
            await self._app.stop()

    async def close(self) -> None:
        if self._app is None:
            return
        await self.stop()  # in case starting was cut short
        await self._app.shutdown()

    async def _poll(self) -> None:
        """Long polling that confirms an update only once it is handled.

        PTB's own Updater confirms updates as soon as they are fetched, so a
        crash loses what was fetched but not yet handled. Here an update stays
        on Telegram's side until the core has committed it; if it comes again
        after a crash, the core knows its event id.
        """
        delay = self.tuning.backoff_start
        bot = self._bot
        while not self._stopping:
            try:
                updates = await bot.get_updates(
                    offset=self._offset,
                    timeout=timedelta(seconds=self.tuning.poll_timeout),
                    allowed_updates=UPDATES,
                )
            except RetryAfter as error:
                await asyncio.sleep(_seconds(error))
                continue
            except InvalidToken as error:
                log.error("telegram: the Bot API refused the token; polling stopped (%s)", error)
                return
            except TelegramError as error:
                if not isinstance(error, NetworkError) or isinstance(error, BadRequest):
                    self.health.problem(error)  # e.g. another process polls with this token
                await asyncio.sleep(delay)  # a network failure: Health logged it
                delay = min(delay * 2, self.tuning.backoff_max)
                continue
            delay = self.tuning.backoff_start
            self.health.solved()
            for update in updates:
                if self._stopping:
                    break  # not confirmed: Telegram delivers it again after the restart
                self._handling = True
                log.debug("telegram: handling update %s", update.update_id)
                try:
                    await self._app_process(update)
                finally:
                    self._handling = False
                self._offset = update.update_id + 1

    async def _app_process(self, update: Update) -> None:
        assert self._app is not None
        try:
            await self._app.process_update(update)
        except Exception:
            log.exception("telegram: update %s failed", update.update_id)

    async def _confirm(self) -> None:
        """Tell Telegram which updates are handled, so a restart doesn't fetch them again."""
        if self._offset is None:
            return
        try:
            await asyncio.wait_for(
                self._bot.get_updates(offset=self._offset, timeout=0, allowed_updates=UPDATES), 5
            )
        except (TelegramError, TimeoutError) as error:
            log.info("telegram: confirming handled updates failed (they come again): %s", error)

    async def _load(self) -> None:
        self._moved = {
            int(old): int(new) for old, new in (await self._db(self.store.states, "moved:")).items()
        }
        self.groups = {self._current(g) for g in self._configured}
        self._asking = await self._db(self.store.states, "asking:")
        self._told = {int(c) for c in await self._db(self.store.states, "told:")}
        self._holding = await self._db(self.store.holding)

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        tuning = self.tuning
        limiter = AIORateLimiter(
            overall_max_rate=tuning.overall_rate,
            overall_time_period=tuning.overall_period,
            group_max_rate=tuning.group_rate,
            group_time_period=tuning.group_period,
            max_retries=tuning.retries_after_429,
        )
        app = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(self._base_url)
            .request(WatchedRequest(self.health))
            .get_updates_request(WatchedRequest(self.health, connection_pool_size=2))
            .rate_limiter(limiter)
            .updater(None)  # we poll ourselves: see _poll
            .job_queue(None)  # the scheduler is ours, not PTB's
            .build()
        )
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        return app

    async def _until_up(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run a start-up call until Telegram answers; a refused token is fatal."""
        delay = self.tuning.backoff_start
        while True:
            try:
                await action()
                return
            except InvalidToken:
                raise TransportError(
                    "telegram: the Bot API refused the token (check telegram.token)"
                ) from None
            except RetryAfter as error:
                await asyncio.sleep(_seconds(error))
            except BadRequest:
                raise
            except NetworkError:
                await asyncio.sleep(delay)  # Health logged it
                delay = min(delay * 2, self.tuning.backoff_max)

    async def _register_commands(self) -> None:
        """The command menu: the group's language by default, the other one by language code."""
        try:
            for language in LANGUAGES:
                code = None if language == self.language else language
                await self._bot.set_my_commands(self._menu(language), language_code=code)
        except TelegramError as error:
            log.warning("telegram: could not register the command menu: %s", error)

    def _menu(self, language: str) -> list[BotCommand]:
        """The commands members may use, each with its help line (Telegram: 1-256 characters)."""
        catalogued = catalog(language)
        menu: list[BotCommand] = []
        for command in REGISTRY.commands:
            word, help_text = command.name_in(language), catalogued.get(f"cmd.{command.name}.help")
            if command.who > Who.MEMBER or not command.listed or not _MENU_WORD.fullmatch(word):
                continue
            if not help_text:
                log.warning(
                    "telegram: /%s has no help text in %s; left out of the menu", word, language
                )
                continue
            menu.append(BotCommand(word, to_plain(help_text)[:256]))
        return menu

    async def _on_error(self, update: object, context: Any) -> None:
        log.error("telegram: handling an update failed", exc_info=context.error)

    @property
    def _bot(self) -> Any:
        assert self._app is not None
        return self._app.bot

    # in --------------------------------------------------------------------------
    async def _on_update(self, update: Update, context: Any) -> None:
        try:
            if update.callback_query is not None:
                await self._on_press(update.callback_query)
            elif update.message is not None:
                await self._on_message(update.message)
            # edited messages, channel posts and the rest never reach the core
        except Busy:
            log.warning("telegram: update %s: database busy or unreachable", update.update_id)
        except Exception:
            log.exception("telegram: update %s failed", update.update_id)

    async def _on_message(self, message: Message) -> None:
        chat = message.chat
        if message.migrate_to_chat_id:
            await self._migrate(chat.id, message.migrate_to_chat_id)
            return
        if message.migrate_from_chat_id:
            await self._migrate(message.migrate_from_chat_id, chat.id)
            return
        is_group = chat.type in _GROUP_TYPES
        if not is_group and chat.type != TgChat.PRIVATE:
            return  # channels
        if is_group and chat.id not in self.groups:
            if message.text or any(u.id == self._bot.id for u in message.new_chat_members):
                await self._tell_wrong_group(chat)
            return
        user = message.from_user
        if message.text is None or user is None:
            return
        await self._remember(user)
        text, mentions = await self._read(message)
        addressed = _ADDRESSED.match(text)
        if addressed:
            if addressed[2].lower() != self.username.lower():
                return  # a command for another bot
            text = addressed[1] + text[addressed.end() :]
        where = Chat(PLATFORM, str(chat.id), ChatKind.GROUP if is_group else ChatKind.DIRECT)
        event_id = f"{chat.id}:{message.message_id}"
        if message.sender_chat is not None or user.id == ANONYMOUS_ADMIN:
            if text.startswith("/"):  # an admin writing as the group, or a channel
                self._say(where, "telegram.anonymous", self.language, event_id)
            return
        if user.is_bot:
            return
        if not is_group and str(user.id) in self._holding:
            with contextlib.suppress(Busy):  # the database is down: held until the next message
                await self._deliver_held(user.id)
        incoming = Incoming(
            platform=PLATFORM,
            event_id=event_id,
            chat=where,
            sender=Identity(PLATFORM, str(user.id)),
            sender_name=user.full_name,
            text=text,
            mentions=mentions,
            reply_to=self._reply_to(message),
            answers=self._question_of(message.reply_to_message),
        )
        assert self._hub is not None
        result = await self._hub.submit(incoming)
        for question in result.closed:
            await self._forget_question(str(question), retire=True)

    def _question_of(self, replied: Message | None) -> int | None:
        """The question asked by the message ``replied`` (a reply answers exactly it)."""
        if replied is None:
            return None
        here = f"{replied.chat.id}:{replied.message_id}:"
        found = next((q for q, where in self._asking.items() if where.startswith(here)), None)
        return int(found) if found is not None else None

    async def _read(self, message: Message) -> tuple[str, tuple[Mention, ...]]:
        """The text for the core and the members it names.

        A text mention (a person without @username) covers their shown name,
        which may be several words; it becomes one word, ``@First_Last``.
        """
        text = message.text or ""
        encoded = text.encode("utf-16-le")
        parts: list[str] = []
        mentions: list[Mention] = []
        position = 0
        for entity in sorted(message.entities, key=lambda e: e.offset):
            shown = _span(encoded, entity.offset, entity.length)
            if entity.type == MessageEntity.MENTION:
                handle = shown.lstrip("@").lower()
                user_id = None if handle == self.username.lower() else await self._user_for(handle)
                if user_id is not None:
                    mentions.append(Mention(shown, Identity(PLATFORM, user_id)))
            elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
                if entity.offset < position or entity.user.is_bot:
                    continue
                await self._remember(entity.user)
                word = "@" + ("_".join(shown.lstrip("@").split()) or str(entity.user.id))
                parts.append(_span(encoded, position, entity.offset - position))
                parts.append(word)
                position = entity.offset + entity.length
                mentions.append(Mention(word, Identity(PLATFORM, str(entity.user.id))))
        parts.append(encoded[position * 2 :].decode("utf-16-le"))
        return "".join(parts), tuple(mentions)

    @staticmethod
    def _reply_to(message: Message) -> Identity | None:
        """The member whose message this one answers (a person, never a bot or the group)."""
        replied = message.reply_to_message
        if replied is None or replied.forum_topic_created is not None:
            return None  # in a forum topic every message "replies" to the topic's start
        author = replied.from_user
        if author is None or author.is_bot or replied.sender_chat is not None:
            return None
        return Identity(PLATFORM, str(author.id))

    async def _remember(self, user: User) -> None:
        """Members are keyed on the numeric id; an @username only leads to it."""
        if not user.username or user.is_bot:
            return
        handle, user_id = user.username.lower(), str(user.id)
        if self._handles.get(handle) != user_id:
            # Noting a handle is no reason to drop the message: with the database
            # down the core still answers "try again"; the handle is noted next time.
            with contextlib.suppress(Busy):
                await self._db(self.store.remember_handle, handle, user_id)
                self._handles[handle] = user_id

    async def _user_for(self, handle: str) -> str | None:
        if handle not in self._handles:
            try:
                found = await self._db(self.store.user_for_handle, handle)
            except Busy:  # the database is down: the core will say "try again" as well
                return None
            if found is None:
                return None
            self._handles[handle] = found
        return self._handles[handle]

    async def _on_press(self, query: CallbackQuery) -> None:
        presser = query.from_user
        message = query.message
        if (query.data or "").startswith("/") and isinstance(message, Message):
            await self._run_choice(query, message, query.data or "")
            return
        answer, asked, question = [*(query.data or "").split(":"), "", ""][:3]
        if not isinstance(message, Message) or not asked.isdigit():
            await self._answer_query(query)  # too old to act on, or not one of our buttons
            return
        if str(presser.id) != asked:
            text = (await self._translator(presser.id))("telegram.not_for_you")
            await self._answer_query(query, text)
            return
        where = self._asking.get(question, "")
        if not where.startswith(f"{message.chat.id}:{message.message_id}:"):
            # answered, expired or asked again below: these buttons answer nothing now
            text = (await self._translator(presser.id))("telegram.not_open")
            await self._answer_query(query, text)
            await self._edit_markup(message.chat.id, message.message_id)
            return
        await self._answer_query(query)
        incoming = _press(query, message, ANSWER_WORDS.get(answer, answer), answers=int(question))
        assert self._hub is not None
        result = await self._hub.submit(incoming)
        if result.outcome in _UNCHANGED:
            return
        language = where.rpartition(":")[2]
        await self._show_answer(message, query.data or "", language)
        await self._forget_question(question, retire=False)

    async def _run_choice(self, query: CallbackQuery, message: Message, command: str) -> None:
        """A button anyone may press (a vote): run its command as the presser.

        The core answers a press privately; the first line of that answer also
        shows on the presser's screen, for those who never opened a direct chat.
        """
        await self._remember(query.from_user)
        incoming = _press(query, message, command, pressed=True)
        assert self._hub is not None
        result = await self._hub.submit(incoming)
        shown = next((to_plain(reply.text) for reply in result.replies), "")
        if len(shown) > TOAST_LIMIT:
            shown = shown[: TOAST_LIMIT - 1] + "…"
        await self._answer_query(query, shown or None, alert=result.outcome != "applied")

    async def _answer_query(
        self, query: CallbackQuery, text: str | None = None, *, alert: bool = True
    ) -> None:
        try:
            await query.answer(text, show_alert=alert and text is not None)
        except TelegramError as error:  # e.g. too old after a restart: the press still counts
            log.debug("telegram: answering a button press failed: %s", error)

    async def _show_answer(self, message: Message, data: str, language: str) -> None:
        """The question's buttons give way to the answer given."""
        label = next(
            (
                button.text
                for row in (message.reply_markup.inline_keyboard if message.reply_markup else ())
                for button in row
                if button.callback_data == data
            ),
            data.partition(":")[0],
        )
        t = self.translators.get(language) or self.translators[self.language]
        note = t("choice.answered", answer=label)
        chat_id, message_id = message.chat.id, message.message_id
        if units((message.text or "") + "\n\n" + to_plain(note)) > TEXT_LIMIT:
            await self._edit_markup(chat_id, message_id)
            return
        text = f"{message.text_html}\n\n{to_html(note)}"
        try:
            await self._api(
                chat_id,
                lambda cid: self._bot.edit_message_text(
                    text,
                    chat_id=cid,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                ),
            )
        except TelegramError as error:
            log.debug("telegram: showing the answer failed: %s", error)
            await self._edit_markup(chat_id, message_id)

    async def _edit_markup(self, chat_id: int, message_id: int) -> None:
        """Remove a message's buttons."""
        try:
            await self._api(
                chat_id,
                lambda cid: self._bot.edit_message_reply_markup(
                    chat_id=cid, message_id=message_id, reply_markup=None
                ),
            )
        except TelegramError as error:  # already gone, or not modified
            log.debug("telegram: removing buttons failed: %s", error)

    async def _set_question(self, question: str, where: str | None, *, retire: bool) -> None:
        """The message whose buttons answer ``question`` (None: none any more).

        A question shown again ("which one?") keeps its buttons on the newest
        message only, so no old button answers it twice.
        """
        old = self._asking.get(question)
        if old == where:
            return
        if where is None:
            self._asking.pop(question, None)
        else:
            self._asking[question] = where
        async with self._asking_written:
            await self._db(self.store.set_state, f"asking:{question}", where)
        if retire and old is not None:
            chat_id, message_id, _ = old.split(":")
            await self._edit_markup(int(chat_id), int(message_id))

    async def _forget_question(self, question: str, *, retire: bool) -> None:
        await self._set_question(question, None, retire=retire)

    async def _translator(self, user_id: int) -> Translator:
        profile = await self._db(self.store.profile, str(user_id))
        language = profile.language if profile and profile.language else self.language
        return self.translators[language]

    def _say(self, chat: Chat, key: str, language: str, event_id: str | None = None) -> None:
        text = self.translators[language](key, group=self.group_name)
        assert self._hub is not None
        self._hub.post(Outgoing(ToChat(chat), text, reply_to_event=event_id))

    async def _tell_wrong_group(self, chat: TgChat) -> None:
        """Once per group: which group this bot serves; quiet after that."""
        chat_id = chat.id
        if chat_id in self._told:
            return
        log.info(  # how an operator learns a group's id
            "telegram: group %s (%r) is not in telegram.group_chat_ids; told it so, once",
            chat_id,
            chat.title,
        )
        self._told.add(chat_id)
        await self._db(self.store.set_state, f"told:{chat_id}", "1")
        self._say(
            Chat(PLATFORM, str(chat_id), ChatKind.GROUP), "telegram.wrong_group", self.language
        )

    async def _migrate(self, old: int, new: int) -> None:
        if self._moved.get(old) == new:
            return
        self._moved[old] = new
        if old in self.groups:
            self.groups.discard(old)
            self.groups.add(new)
        await self._db(self.store.set_state, f"moved:{old}", str(new))
        log.info("telegram: group %s became supergroup %s", old, new)

    def _current(self, chat_id: int) -> int:
        seen: set[int] = set()
        while chat_id in self._moved and chat_id not in seen:
            seen.add(chat_id)
            chat_id = self._moved[chat_id]
        return chat_id

    # out ---------------------------------------------------------------------------
    def lane(self, target: Target) -> str:
        if isinstance(target, ToChat):
            return target.chat.chat_id
        if isinstance(target, ToPerson):
            return target.identity.user_id
        return str(next(iter(self.groups))) if len(self.groups) == 1 else "groups"

    async def send(self, outgoing: Outgoing, origin: Incoming | None) -> None:
        target = outgoing.target
        if isinstance(target, ToAllGroups):
            for group in sorted(self.groups):
                await self._send_to_group(group, outgoing, None)
        elif isinstance(target, ToChat):
            chat_id = int(target.chat.chat_id)
            reply_to = _message_id(outgoing.reply_to_event, chat_id)
            if target.chat.is_group:
                await self._send_to_group(chat_id, outgoing, reply_to)
            else:
                await self._send_direct(chat_id, outgoing, origin, reply_to)
        elif target.identity.platform == PLATFORM:
            await self._send_direct(int(target.identity.user_id), outgoing, origin, None)

    async def _send_to_group(self, chat_id: int, outgoing: Outgoing, reply_to: int | None) -> None:
        try:
            await self._deliver(chat_id, outgoing, reply_to)
        except Forbidden as error:
            log.warning("telegram: may not write in group %s: %s", chat_id, error)
        except TelegramError as error:
            log.warning("telegram: a message to group %s was refused: %s", chat_id, error)

    async def _send_direct(
        self, user_id: int, outgoing: Outgoing, origin: Incoming | None, reply_to: int | None
    ) -> None:
        try:
            await self._deliver(user_id, outgoing, reply_to)
        except Forbidden:
            await self._hold(user_id, outgoing, origin)
        except TelegramError as error:
            log.warning("telegram: a direct message was refused: %s", error)

    async def _deliver(self, chat_id: int, outgoing: Outgoing, reply_to: int | None) -> None:
        if outgoing.image is not None:
            await self._send_picture(chat_id, outgoing, reply_to)
            return
        chunks = split_markup(outgoing.text)
        keyboard = _keyboard(outgoing)
        sent: Message | None = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent = await self._send_html(
                chat_id,
                to_html(chunk),
                reply_to if index == 0 else None,
                keyboard if last else None,
            )
        if keyboard is not None and sent is not None and outgoing.question is not None:
            where = f"{sent.chat.id}:{sent.message_id}:{outgoing.language or self.language}"
            await self._set_question(str(outgoing.question), where, retire=True)

    async def _send_html(
        self,
        chat_id: int,
        text: str,
        reply_to: int | None,
        keyboard: InlineKeyboardMarkup | None,
    ) -> Message:
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        message: Message = await self._api(
            chat_id,
            lambda cid: self._bot.send_message(
                cid,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                reply_parameters=reply,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
        )
        return message

    async def _send_picture(self, chat_id: int, outgoing: Outgoing, reply_to: int | None) -> None:
        """A chart as a photo. Telegram has no alt text: the caption says what it shows.

        A refused picture is not held for later, as a text is: the text sent
        before it carries the same figures.
        """
        image = outgoing.image
        assert image is not None
        caption = to_html(outgoing.text)
        if units(to_plain(outgoing.text) + "\n" + image.alt) <= CAPTION_LIMIT:
            caption += "\n" + html.escape(image.alt, quote=False)
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        try:
            await self._api(
                chat_id,
                lambda cid: self._bot.send_photo(
                    cid,
                    image.data,
                    caption=caption,
                    parse_mode=ParseMode.HTML,
                    reply_parameters=reply,
                    filename=image.name,
                ),
            )
        except TelegramError as error:
            log.warning("telegram: a picture to %s was refused: %s", chat_id, error)

    async def _api(self, chat_id: int, call: Callable[[int], Awaitable[T]]) -> T:
        """One Bot API call about a chat, to its current id, retried until Telegram answers.

        Flood limits are waited out (the rate limiter does it first); network
        errors and outages are retried with growing pauses. A refusal
        (Forbidden, BadRequest) is the caller's to handle.
        """
        delay = self.tuning.backoff_start
        while True:
            current = self._current(chat_id)
            try:
                return await call(current)
            except ChatMigrated as moved:
                await self._migrate(current, moved.new_chat_id)
            except RetryAfter as error:
                await asyncio.sleep(_seconds(error))
            except BadRequest:
                raise
            except NetworkError:  # Health logged the outage
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)

    # held direct messages ------------------------------------------------------------
    async def _hold(self, user_id: int, outgoing: Outgoing, origin: Incoming | None) -> None:
        """Telegram refused a direct message: keep it, and show the person a start link."""
        person = str(user_id)
        body = {
            "text": outgoing.text,
            "choices": [[c.label, c.answer] for c in outgoing.choices],
            "asked": outgoing.asked is not None,
            "question": outgoing.question,
            "language": outgoing.language,
        }
        await self._db(self.store.hold, person, json.dumps(body))
        self._holding.add(person)
        now = time.monotonic()
        last = self._linked.get(person)
        if last is not None and now - last < self.tuning.link_every:
            return
        group = self._group_for(origin)
        if group is None:
            log.info("telegram: holding a message for %s; no group to post a start link", person)
            return
        self._linked[person] = now
        profile = await self._db(self.store.profile, person)
        name = profile.display_name if profile else person
        language = profile.language if profile and profile.language else self.language
        link = f"https://t.me/{self.username}?start={HELD}"
        text = to_html(self.translators[language]("telegram.start_me", name=_NAME, link=link))
        mention = f'<a href="tg://user?id={user_id}">{html.escape(name, quote=False)}</a>'
        try:
            await self._send_html(group, text.replace(_NAME, mention), None, None)
        except TelegramError as error:
            log.warning("telegram: posting a start link in %s failed: %s", group, error)

    def _group_for(self, origin: Incoming | None) -> int | None:
        """Where to post a start link: the group the message came from, else the first one."""
        if origin is not None and origin.platform == PLATFORM and origin.chat.is_group:
            chat_id = self._current(int(origin.chat.chat_id))
            if chat_id in self.groups:
                return chat_id
        return min(self.groups) if self.groups else None

    async def _deliver_held(self, user_id: int) -> None:
        person = str(user_id)
        for held_id, body in await self._db(self.store.held, person):
            data = json.loads(body)
            choices = tuple(Choice(label, answer) for label, answer in data["choices"])
            identity = Identity(PLATFORM, person)
            outgoing = Outgoing(
                ToPerson(identity),
                data["text"],
                choices,
                identity if data["asked"] else None,
                question=data.get("question"),
                language=data.get("language"),
            )
            try:
                await self._deliver(user_id, outgoing, None)
            except Forbidden:
                return
            except TelegramError as error:
                log.warning("telegram: a held message could not be delivered: %s", error)
            await self._db(self.store.delivered, held_id)
        self._holding.discard(person)
        self._linked.pop(person, None)

    @staticmethod
    async def _db(function: Callable[..., T], *args: Any) -> T:
        """The platform store's calls are short transactions; they run off the event loop."""
        return await asyncio.to_thread(function, *args)


def _press(
    query: CallbackQuery,
    message: Message,
    text: str,
    *,
    pressed: bool = False,
    answers: int | None = None,
) -> Incoming:
    """A button press as the core sees it: ``text`` typed by the presser where the button is.

    An answer to a question (``pressed`` False) is given in the question's chat,
    as a typed "ja" would be; a command anyone may press is answered privately.
    """
    is_group = message.chat.type in _GROUP_TYPES
    return Incoming(
        platform=PLATFORM,
        event_id=f"cb:{query.id}",
        chat=Chat(PLATFORM, str(message.chat.id), ChatKind.GROUP if is_group else ChatKind.DIRECT),
        sender=Identity(PLATFORM, str(query.from_user.id)),
        sender_name=query.from_user.full_name,
        text=text,
        pressed=pressed,
        answers=answers,
    )


def _keyboard(outgoing: Outgoing) -> InlineKeyboardMarkup | None:
    asked = outgoing.asked
    if not outgoing.choices:
        return None
    if asked is None:  # commands anyone may press; long labels each on a row of their own
        buttons = [
            InlineKeyboardButton(c.label, callback_data=c.answer)
            for c in outgoing.choices
            if c.is_command and len(c.answer.encode()) <= CALLBACK_LIMIT
        ]
        short = len(buttons) <= 3 and all(len(b.text) <= 12 for b in buttons)
        return InlineKeyboardMarkup([buttons] if short else [[b] for b in buttons])
    if asked.platform != PLATFORM or outgoing.question is None:
        return None
    data = f"{asked.user_id}:{outgoing.question}"
    row = [
        InlineKeyboardButton(c.label, callback_data=f"{c.answer}:{data}") for c in outgoing.choices
    ]
    return InlineKeyboardMarkup([row])


def _message_id(event_id: str | None, chat_id: int) -> int | None:
    """The message an event id (``chat:message``) names, if it is in ``chat_id``."""
    if event_id is None:
        return None
    chat, _, message = event_id.partition(":")
    return int(message) if chat == str(chat_id) and message.isdigit() else None


# doctor ------------------------------------------------------------------------


async def diagnose(section: TelegramSection) -> list[Check]:
    """``letsbot doctor`` for Telegram: the token (getMe), each group (getChat), the bot there.

    The rights the bot needs in a group: be a member and be allowed to send
    messages. No administrator rights: in privacy mode commands, replies to
    the bot and button presses still reach it, and it never deletes or pins.
    """
    from telegram import Bot

    token = section.bot_token()
    bot = Bot(
        token,
        base_url=section.base_url,
        request=HTTPXRequest(connect_timeout=10, read_timeout=10),
    )

    def hide(text: str) -> str:
        return text.replace(token, "<token>") if token else text

    try:
        try:
            await bot.initialize()  # getMe
        except InvalidToken:
            return [
                Check.failed(
                    "telegram bot",
                    "Telegram refused the token (Unauthorized)",
                    "copy the bot's token from @BotFather (/mybots, API Token) into"
                    " LETSBOT_TELEGRAM__TOKEN or telegram.token_file",
                )
            ]
        except TelegramError as error:
            return [
                Check.failed(
                    "telegram bot",
                    f"can't reach the Bot API: {hide(str(error)) or type(error).__name__}",
                    "check the server's internet connection and telegram.base_url",
                )
            ]
        me = bot.bot
        privacy = (
            "sees every group message"
            if me.can_read_all_group_messages
            else "privacy mode: in groups it sees commands and replies to it"
        )
        checks = [Check.passed("telegram bot", f"the bot is @{me.username} ({privacy})")]
        if not section.group_chat_ids:
            checks.append(
                Check.failed(
                    "telegram groups",
                    "telegram.group_chat_ids is empty: the bot serves no group",
                    "put the group's id in telegram.group_chat_ids (README, Telegram step 4)",
                )
            )
        for chat_id in section.group_chat_ids:
            checks.extend(await _diagnose_group(bot, chat_id, me.id, hide))
        return checks
    finally:
        with contextlib.suppress(TelegramError):
            await bot.shutdown()


async def _diagnose_group(
    bot: Any, chat_id: int, bot_id: int, hide: Callable[[str], str]
) -> list[Check]:
    name = f"telegram group {chat_id}"
    try:
        chat = await bot.get_chat(chat_id)
        member = await bot.get_chat_member(chat_id, bot_id)
    except ChatMigrated as error:
        new = error.new_chat_id
        return [
            Check.failed(
                name,
                f"the group became a supergroup with the id {new}",
                f"replace {chat_id} by {new} in telegram.group_chat_ids",
            )
        ]
    except Forbidden:
        return [
            Check.failed(
                name,
                "the bot is not in this group (removed, or never added)",
                "add the bot to the group again",
            )
        ]
    except TelegramError as error:
        return [
            Check.failed(
                name,
                f"Telegram answers: {hide(str(error))}",
                "add the bot to the group, and check the id in telegram.group_chat_ids"
                " (README, Telegram step 4)",
            )
        ]
    title = chat.title or str(chat_id)
    if chat.type not in _GROUP_TYPES:
        return [
            Check.failed(
                name,
                f"'{title}' is a {chat.type}, not a group",
                "put only group ids in telegram.group_chat_ids",
            )
        ]
    found = Check.passed(name, f"'{title}' ({chat.type}) is reachable")
    status = member.status
    rights = f"telegram rights in {chat_id}"
    if status in (member.LEFT, member.BANNED):
        return [
            found,
            Check.failed(
                rights,
                f"the bot is not a member of '{title}' ({status})",
                "add the bot to the group (if it was banned, remove the ban first)",
            ),
        ]
    restricted = status == member.RESTRICTED and not member.can_send_messages
    closed = (
        status == member.MEMBER
        and chat.permissions is not None
        and chat.permissions.can_send_messages is False
    )
    if restricted or closed:
        return [
            found,
            Check.failed(
                rights,
                f"the bot may not send messages in '{title}'",
                "in the group's settings (Permissions), let the bot send messages,"
                " or make it an administrator",
            ),
        ]
    return [
        found,
        Check.passed(rights, f"the bot is {status} and may send messages (no admin rights needed)"),
    ]


# What the composition root needs to serve Telegram (listed in app/platforms.py).
DESCRIPTOR = Platform(PLATFORM, TelegramSection, TelegramTransport, diagnose)
