"""``python -m bench`` (``make bench``): every benchmark, one table, bench/results.json.

Benchmarks (``--only`` takes their names, comma-separated):

- ``latency``  1 + 2: /balance and a confirmed payment on Synapse vs an echo bot
- ``load``     3: many members on Synapse sending a mix of commands
- ``ledger``   4: ledger throughput on SQLite (and PostgreSQL with --postgres)
- ``startup``  5: start-up on 10,000 members / 1,000,000 transfers, idle memory
- ``fanout``   6: one reminder to 20 group channels (Telegram and Matrix)
- ``bulk``     7: a mass payment to 10,000 members, preview and booking (SQLite, PostgreSQL)
- ``e2ee``     8: /balance in an encrypted DM vs an encrypted echo bot and vs unencrypted;
  start-up and idle memory with the encryption store kept (on the start-up database)
- ``partners`` 9: a payment to a partner group's bot vs a local one; 100 each way at once

``--readme`` prints the Markdown table of the last results file, for the
README's Performance section; ``--update-readme`` puts it there. The exit
status is 0 even when a target is missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Row, machine, machine_line, markdown, table

NAMES = ("latency", "load", "ledger", "startup", "fanout", "bulk", "e2ee", "partners")
RESULTS = Path(__file__).resolve().parent / "results.json"
README = Path(__file__).resolve().parent.parent / "README.md"
MARKS = ("<!-- bench:table -->", "<!-- /bench:table -->")
POSTGRES_ENV = "LETSBOT_TEST_POSTGRES_URL"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="letsbot's benchmarks: a table of figures against baselines and targets",
    )
    parser.add_argument(
        "--only", metavar="NAMES", help=f"comma-separated subset of: {', '.join(NAMES)}"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="print the Markdown table of the results file (--json) and exit; runs nothing",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="put that table into README.md (between its bench:table marks) and exit",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and short runs: proves it all works"
    )
    group = parser.add_argument_group("sizes")
    group.add_argument("--samples", type=int, default=100, help="latency: /balance round trips")
    group.add_argument("--pay-samples", type=int, default=40, help="latency: payments")
    group.add_argument("--members", type=int, default=50, help="load: simulated members")
    group.add_argument(
        "--duration", type=float, default=60, help="load: seconds of load (default 60)"
    )
    group.add_argument(
        "--echo-duration",
        type=float,
        default=30,
        help="load: seconds of the same load on the echo bot, for comparison (0: skip)",
    )
    group.add_argument(
        "--think",
        default="1,3",
        metavar="MIN,MAX",
        help="load: a member's pause between commands, seconds (uniform)",
    )
    group.add_argument("--ledger-rounds", type=int, default=5)
    group.add_argument("--ledger-seconds", type=float, default=3.0)
    group.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get(POSTGRES_ENV) or None,
        help=f"ledger: also on PostgreSQL, in a schema of its own (default: ${POSTGRES_ENV})",
    )
    group.add_argument("--startup-members", type=int, default=10_000)
    group.add_argument("--startup-transfers", type=int, default=1_000_000)
    group.add_argument("--startup-runs", type=int, default=3)
    group.add_argument("--channels", type=int, default=20, help="fan-out: group channels")
    group.add_argument("--bulk-members", type=int, default=10_000, help="bulk: members paid")
    group.add_argument("--bulk-runs", type=int, default=3, help="bulk: runs (median)")
    group.add_argument(
        "--e2ee-samples", type=int, default=60, help="e2ee: /balance round trips per chat"
    )
    group.add_argument(
        "--partner-samples", type=int, default=40, help="partners: payments of each kind"
    )
    group.add_argument(
        "--partner-burst", type=int, default=100, help="partners: payments each way at once"
    )
    group.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="start-up: where the generated database is kept (default: bench/.cache)",
    )
    args = parser.parse_args(argv)
    chosen = NAMES if not args.only else tuple(n.strip() for n in args.only.split(","))
    unknown = [n for n in chosen if n not in NAMES]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    args.chosen = chosen
    try:
        low, high = (float(x) for x in args.think.split(","))
    except ValueError:
        parser.error("--think: expected MIN,MAX in seconds, e.g. 1,3")
    args.think_range = (low, high)
    if args.smoke:
        args.samples, args.pay_samples = 4, 2
        args.members, args.duration, args.think_range = 4, 3.0, (0.2, 0.5)
        args.echo_duration = 2.0
        args.ledger_rounds, args.ledger_seconds = 1, 0.3
        args.startup_members, args.startup_transfers, args.startup_runs = 50, 2_000, 1
        args.channels = 3
        args.bulk_members, args.bulk_runs = 50, 1
        args.e2ee_samples = 4
        args.partner_samples, args.partner_burst = 3, 5
    return args


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    chosen = set(args.chosen)
    with tempfile.TemporaryDirectory(prefix="letsbot-bench-") as name, ExitStack() as stack:
        folder = Path(name)
        server = None
        if chosen & {"latency", "load", "fanout", "e2ee"}:
            from bench.matrix import Homeserver

            server = stack.enter_context(Homeserver(folder / "synapse"))
        if chosen & {"latency", "load"}:
            from bench import replies

            assert server is not None
            more, info = replies.measure(
                folder,
                server,
                samples=args.samples,
                pay_samples=args.pay_samples,
                load_members=args.members,
                load_seconds=args.duration,
                think=args.think_range,
                run_latency="latency" in chosen,
                run_load="load" in chosen,
                echo_seconds=args.echo_duration,
            )
            rows += more
            details["matrix"] = info
        if "ledger" in chosen:
            from bench import ledger

            sizes = (100, 1_000) if args.smoke else (ledger.SMALL, ledger.LARGE)
            figures, info = ledger.measure(
                folder,
                rounds=args.ledger_rounds,
                seconds=args.ledger_seconds,
                balance_calls=20 if args.smoke else 400,
                history_calls=10 if args.smoke else 200,
                sizes=sizes,
                postgres=args.postgres,
            )
            rows += ledger_rows(figures)
            details["ledger"] = info
        if "startup" in chosen:
            from bench import startup

            more, info = startup.measure(
                folder,
                member_count=args.startup_members,
                transfer_count=args.startup_transfers,
                runs=args.startup_runs,
                settle=0.5 if args.smoke else 2.0,
                cache=args.cache,
            )
            rows += more
            details["startup"] = info
        if "fanout" in chosen:
            from bench import fanout

            more, info = fanout.measure(
                folder,
                server,
                channels=args.channels,
                telegram_rate=2 if args.smoke else 30,
                matrix_burst=1 if args.smoke else 10,
                settle=0.5 if args.smoke else 1.0,
            )
            rows += more
            details["fanout"] = info
        if "bulk" in chosen:
            from bench import bulk

            more, info = bulk.measure(
                folder, count=args.bulk_members, runs=args.bulk_runs, postgres=args.postgres
            )
            rows += more
            details["bulk"] = info
        if "e2ee" in chosen:
            from bench import e2ee, startup

            assert server is not None
            big, _ = startup.cached_database(
                args.startup_members, args.startup_transfers, args.cache or startup.CACHE
            )
            more, info = e2ee.measure(
                folder,
                server,
                samples=args.e2ee_samples,
                big=big,
                big_members=args.startup_members,
                runs=args.startup_runs,
                settle=0.5 if args.smoke else 2.0,
            )
            rows += more
            details["e2ee"] = info
        if "partners" in chosen:
            from bench import partners

            more, info = partners.measure(
                folder, samples=args.partner_samples, count=args.partner_burst
            )
            rows += more
            details["partners"] = info
    order = {name: n for n, name in enumerate("123456789")}
    rows.sort(key=lambda row: order.get(row.bench[:1], 9))
    return rows, details


def ledger_rows(figures: list[Any]) -> list[Row]:
    """bench.ledger's figures as rows; the payment rate carries its baseline and ratio."""
    by_key = {f.key: f for f in figures}
    rows = []
    for prefix, where in (("", "SQLite"), ("pg_", "PostgreSQL")):
        pay = by_key.get(f"{prefix}payments_per_s")
        if pay is None:
            continue
        base = by_key[f"{prefix}baseline_per_s"]
        ratio = by_key[f"{prefix}ratio"]
        rows.append(
            Row(
                "4 ledger",
                f"ledger_{prefix}payments_per_s",
                f"{where}: confirmed payments/s (vs bare Core)",
                pay.value,
                "/s",
                base.value,
                ratio.value,
                f"{pay.target} /s, ratio {ratio.target}",
                bool(pay.passed and ratio.passed),
            )
        )
        asked, answered = (
            by_key[f"{prefix}statements_question"],
            by_key[f"{prefix}statements_answer"],
        )
        rows.append(
            Row(
                "4 ledger",
                f"ledger_{prefix}statements_per_payment",
                f"{where}: statements per confirmed payment"
                f" ({asked.value:g} question + {answered.value:g} answer; vs bare Core)",
                asked.value + answered.value,
                "count",
                by_key[f"{prefix}baseline_statements"].value,
            )
        )
    for command in ("balance", "history"):
        growth = by_key.get(f"{command}_growth")
        medians = [f for f in figures if f.key.startswith(f"{command}_") and "median" in f.key]
        if growth is None or len(medians) != 2:
            continue
        small, large = medians
        sizes = growth.label.split(" ratio ")[1]  # "100,000 / 1,000"
        rows.append(
            Row(
                "4 ledger",
                f"ledger_{command}_median_ms",
                f"SQLite: /{command} median at {sizes.split(' / ')[0]} transfers"
                f" (vs at {sizes.split(' / ')[1]})",
                large.value,
                "ms",
                small.value,
                growth.value,
                f"ratio {growth.target}" if growth.target else "",
                growth.passed,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.readme:
        print(readme(args.json))
        return 0
    if args.update_readme:
        update_readme(README, readme(args.json))
        print(f"updated the table in {README}")
        return 0
    started = time.perf_counter()
    rows, details = run(args)
    total = time.perf_counter() - started
    info = machine()
    print()
    print(table(rows))
    checked = [row for row in rows if row.met is not None]
    missed = [row for row in checked if not row.met]
    print()
    print(f"machine: {machine_line(info)}; total {total:.0f} s")
    if missed:
        print(
            f"MISSED {len(missed)} of {len(checked)} targets: " + "; ".join(r.label for r in missed)
        )
    else:
        print(f"all {len(checked)} targets met")
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "benchmarks": list(args.chosen),
        "smoke": args.smoke,
        "total_seconds": total,
        "rows": [asdict(row) for row in rows],
        "details": details,
        "all_targets_met": not missed,
    }
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {args.json}")
    return 0


def readme(path: Path) -> str:
    """The Performance table of a results file, and the line naming its machine."""
    report = json.loads(path.read_text(encoding="utf-8"))
    rows = [Row(**row) for row in report["rows"]]
    when = report["when"][:10]
    return (
        f"Measured on {when}: {machine_line(report['machine'])}"
        f" (`make bench`, {report['total_seconds']:.0f} s).\n\n{markdown(rows)}"
    )


def update_readme(path: Path, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    start, end = content.index(MARKS[0]), content.index(MARKS[1])
    content = content[: start + len(MARKS[0])] + "\n" + text + "\n" + content[end:]
    path.write_text(content, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
