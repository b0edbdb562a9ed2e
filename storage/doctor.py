"""``letsbot doctor``, the database part: reachable, at the newest revision, ledger sound."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from letsbot.doctor import Check
from letsbot.domain import GroupLimits
from storage.check import ledger_problems, ledger_size
from storage.database import schema_state


def database_checks(engine: Engine, limits: GroupLimits, shown: str) -> list[Check]:
    """``shown`` is the database URL without its password."""
    try:
        current, head = schema_state(engine)
    except SQLAlchemyError as error:
        if engine.dialect.name == "sqlite":
            remedy = "check storage.url, and that the bot's user may write in the file's folder"
        else:
            remedy = (
                "check that the database server runs and that storage.url (host, database,"
                " user, password) is right"
            )
        return [Check.failed("database", f"can't open {shown} ({type(error).__name__})", remedy)]
    checks = [Check.passed("database", f"{shown} answers")]
    if current != head:
        state = (
            "has no letsbot tables"
            if current is None
            else f"is at revision {current}; this version needs {head}"
        )
        checks.append(Check.failed("database schema", state, "run 'letsbot db upgrade'"))
        return checks
    checks.append(Check.passed("database schema", f"at the newest revision ({head})"))
    try:
        problems = ledger_problems(engine, limits)
        members, transfers = ledger_size(engine)
    except SQLAlchemyError as error:
        return [
            *checks,
            Check.failed(
                "ledger",
                f"can't be read ({type(error).__name__})",
                "run 'letsbot check' and look at the log",
            ),
        ]
    if problems:
        checks.append(
            Check.failed(
                "ledger",
                f"{len(problems)} problem(s), the first: {problems[0]}",
                "run 'letsbot check' for the list; correct bookings with /reverse or /book",
            )
        )
    else:
        checks.append(
            Check.passed(
                "ledger",
                f"{members} members, {transfers} transfers; balances sum to zero and match",
            )
        )
    return checks
