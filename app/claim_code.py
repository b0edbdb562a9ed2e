"""``letsbot claim-code``: one-time codes with which imported members claim their account."""

from __future__ import annotations

import argparse
import sys

from app.compose import CliError, ready_engine, settings_from
from letsbot.clock import SystemClock
from letsbot.domain import CodePurpose, MemberCode, Status
from letsbot.linking import claim_problem, issue_code, spaced
from storage.exchange import parse_code
from storage.uow import SqlUnitOfWork

CLAIM_PROBLEMS = {
    "group_account": "is the group account",
    "inactive": "is no longer a member",
    "external": "is an account of another group (external): no one claims it",
    "has_chat": "uses the bot already (they add another chat app themselves with /link)",
}


def cmd_claim_code(args: argparse.Namespace) -> int:
    if bool(args.members) == args.all:
        raise CliError("claim-code: name members (e.g. DU-012) or give --all, not both")
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    prefix = settings.group.code_prefix.upper()
    now = SystemClock().now()
    problems: list[str] = []
    lines: list[str] = []
    # All or nothing, in one transaction: a problem with one member makes no codes.
    with SqlUnitOfWork(engine).transaction() as store:
        if args.all:
            statuses = (Status.ACTIVE, Status.LEAVING, Status.CANDIDATE)
            chosen = [m for m in store.members.members(statuses) if claim_problem(store, m) is None]
        else:
            chosen = []
            for text in args.members:
                number = parse_code(text, prefix)
                member = store.members.member_by_number(number) if number is not None else None
                if member is None:  # a code from the system the group moved from
                    old = "".join(text.split()).upper()
                    everyone = store.members.members(list(Status))
                    member = next((m for m in everyone if (m.old_code or "").upper() == old), None)
                if member is None:
                    problems.append(f"{text}: no member with that code")
                elif (problem := claim_problem(store, member)) is not None:
                    shown = MemberCode.show(prefix, member.number)
                    problems.append(f"{shown}: {CLAIM_PROBLEMS[problem]}")
                else:
                    chosen.append(member)
        if not problems:
            for member in chosen:
                code, expires = issue_code(store, settings, CodePurpose.CLAIM, member, now, None)
                until = expires.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
                lines.append(
                    f"{MemberCode.show(prefix, member.number)} {member.name}: {spaced(code)}"
                    f" (valid until {until})"
                )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("no codes made: fix the member codes and run it again", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if not lines:
        print("every member uses the bot already: no codes made")
        return 0
    print(
        f"{len(lines)} code(s); hand each to its member in person or on paper. They send"
        " /activeer CODE (English: /claim CODE) in a direct chat with the bot."
        " An earlier code of theirs no longer works."
    )
    return 0
