"""``letsbot export``: members, transfers, listings or events as CSV or JSON."""

from __future__ import annotations

import argparse
import sys

from app.compose import CliError, ready_engine, settings_from
from storage.exchange import COLUMNS, export_rows, write_rows


def cmd_export(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    rows = export_rows(
        engine, args.what, settings.group.code_prefix.upper(), settings.currency.decimals
    )
    if args.output is None:
        write_rows(rows, sys.stdout, args.format, COLUMNS[args.what])
        return 0
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            write_rows(rows, out, args.format, COLUMNS[args.what])
    except OSError as error:
        raise CliError(f"{args.output}: {error.strerror}") from None
    print(f"wrote {len(rows)} {args.what} to {args.output}", file=sys.stderr)
    return 0
