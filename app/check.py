"""``letsbot check``: balances sum to zero, cached balances match, limits hold."""

from __future__ import annotations

import argparse

from app.compose import ready_engine, settings_from
from storage.check import ledger_problems, ledger_size


def cmd_check(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    problems = ledger_problems(engine, settings.group_limits)
    members, transfers = ledger_size(engine)
    if problems:
        print(f"FAILED: {len(problems)} problem(s) in {members} members, {transfers} transfers")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"OK: {members} members, {transfers} transfers; balances sum to zero and match")
    return 0
