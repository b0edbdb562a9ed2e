"""``letsbot report``: one HTML page of a period's figures, charts and events."""

from __future__ import annotations

import argparse
from datetime import date

from app.compose import CliError, ready_engine, settings_from
from letsbot.clock import SystemClock
from letsbot.figures import months_back
from letsbot.i18n import Translator
from letsbot.report import build_report
from storage.uow import SqlUnitOfWork


def cmd_report(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    now = SystemClock().now()
    last: date = args.last or now.astimezone(settings.tz).date()
    first: date = args.first or months_back(last, 12)
    if first > last:
        raise CliError(f"--from {first} is after --to {last}")
    t = Translator(settings.group.language, settings.currency_spec, settings.tz)
    page = build_report(SqlUnitOfWork(engine), settings, t, first, last, now)
    try:
        args.output.write_text(page, encoding="utf-8")
    except OSError as error:
        raise CliError(f"{args.output}: {error.strerror}") from None
    print(f"wrote {args.output}: {first} to {last}")
    return 0
