"""Several bot processes take votes on one proposal at once: each member counts once.

Four OS processes ("spawn"), each with its own engine and Bot on one database,
send a vote for every member in every round; a barrier starts each round in
all processes together, so the same member's votes race each other. Afterwards
the votes table holds one row per member, exactly one confirmation of all
said "your vote" (the others "changed"), and the result counts each member once.
"""

from __future__ import annotations

import json
import random
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from letsbot.markup import to_plain
from storage.database import make_engine
from tests.support import Driver, make_settings, run_processes

PROCESSES = 4
ROUNDS = 15
NAMES = tuple(f"lid{n}" for n in range(12))
CHOICES = ("voor", "tegen", "onthouding")


def settings() -> Any:
    return make_settings(governance={"early_close": False})


def vote_at_random(url: str, index: int, barrier: Any, result_file: str) -> None:
    engine = make_engine(url)
    try:
        driver = Driver(engine, settings())
        rng = random.Random(2000 + index)
        seen: Counter[str] = Counter()
        barrier.wait(timeout=120)
        for k in range(ROUNDS):
            barrier.wait(timeout=60)
            for name in NAMES:
                choice = rng.choice(CHOICES)
                result = driver.send(
                    driver.incoming(name, f"/stem 1 {choice}", event_id=f"v{index}-{k}-{name}")
                )
                said = to_plain(result.replies[0].text) if result.replies else ""
                if result.outcome != "applied":
                    seen[f"{result.outcome}: {said[:60]}"] += 1
                elif "is gewijzigd" in said:
                    seen["changed"] += 1
                elif said.startswith("Je stem op voorstel #1:"):
                    seen[f"first:{name}"] += 1
                else:
                    seen[f"other: {said[:60]}"] += 1
        report: dict[str, Any] = {"seen": dict(seen)}
    except BaseException:
        report = {"error": traceback.format_exc()}
    finally:
        engine.dispose()
    Path(result_file).write_text(json.dumps(report), encoding="utf-8")


def test_concurrent_votes_count_each_member_once(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        driver = Driver(engine, settings())
        for name in NAMES:
            driver.member(name)
        driver.say("admin", "/voorstel Meer markten per jaar")
        reports = run_processes(
            vote_at_random, lambda i, barrier, file: (db_url, i, barrier, file), PROCESSES, tmp_path
        )
        seen: Counter[str] = Counter()
        for report in reports:
            seen.update(report["seen"])

        total = PROCESSES * ROUNDS * len(NAMES)
        firsts = {key: n for key, n in seen.items() if key.startswith("first:")}
        assert firsts == {f"first:{name}": 1 for name in NAMES}, seen
        assert seen["changed"] == total - len(NAMES), seen
        assert driver.count("votes") == len(NAMES)

        out = driver.advance(driver.clock.now() + timedelta(days=7))
        assert "Gestemd: 12 van 13 leden; er moesten er minstens 4 stemmen: gehaald." in out
        tallies = out.split("Stemmen: ")[1].split("\n")[0]  # Voor: 5, Tegen: 4, Onthouding: 3
        counts = [int(part.split(": ")[1]) for part in tallies.split(", ")]
        assert sum(counts) == len(NAMES)
    finally:
        engine.dispose()
