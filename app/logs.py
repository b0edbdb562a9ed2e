"""Log lines: text or JSON, libraries kept from logging secrets, secrets redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# The least a library logs, whatever --log-level says: below it they would write
# tokens, message texts or names (python-telegram-bot logs every Bot API call with
# its parameters at DEBUG; nio logs whole responses).
LIBRARY_LEVELS = {
    "alembic": logging.WARNING,  # we say what it did ourselves
    "httpx": logging.WARNING,  # it would log URLs with tokens
    "httpcore": logging.WARNING,
    "nio": logging.WARNING,  # a line per room state event, and response bodies
    "telegram": logging.INFO,  # DEBUG: every request and answer, texts and names included
}


def quiet_libraries() -> None:
    """Raise the chatty libraries' loggers to their floor (never below the root's level)."""
    root = logging.getLogger().getEffectiveLevel()
    for name, floor in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(max(root, floor))


class Redact(logging.Filter):
    """Secrets never reach a log line, whoever logs them (PTB, httpx, us)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


@contextmanager
def redacted(secrets: Sequence[str]) -> Iterator[None]:
    """Redact ``secrets`` in everything the root logger's handlers write, for a while."""
    redact = Redact(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redact)
