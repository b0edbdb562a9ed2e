"""The benchmarks run end to end, so they don't rot: ``python -m bench --smoke``.

Tiny sizes and short runs, all nine benchmarks in one process on a real Synapse
and the loopback Bot API. Nothing here judges a time: only that every
benchmark reports its figures and that what they check for correctness holds
(no lost replies, every reminder delivered once, ledgers sound).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # the smoke benchmark its tests share: about 40 s


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    if importlib.util.find_spec("synapse") is None:
        pytest.skip("matrix-synapse is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("bench")
    results = folder / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--json",
            str(results),
            "--cache",
            str(folder / "cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(results.read_text(encoding="utf-8")), done.stdout, results


def test_every_benchmark_reports_its_figures(smoke: tuple[dict[str, Any], str, Path]) -> None:
    report, printed, _ = smoke
    assert report["smoke"] is True
    assert report["benchmarks"] == [
        "latency",
        "load",
        "ledger",
        "startup",
        "fanout",
        "bulk",
        "e2ee",
        "partners",
    ]
    rows = {row["key"]: row for row in report["rows"]}
    for key in (
        "balance_median_ms",
        "payment_median_ms",
        "load_per_s",
        "load_p95_ms",
        "load_errors",
        "ledger_payments_per_s",
        "ledger_balance_median_ms",
        "startup_s",
        "idle_rss_mb",
        "fanout_telegram_delivered",
        "fanout_matrix_delivered",
        "bulk_sqlite_preview_s",
        "bulk_sqlite_booking_s",
        "e2ee_balance_median_ms",
        "e2ee_vs_plain_median_ms",
        "e2ee_startup_s",
        "e2ee_idle_rss_mb",
        "partners_payment_median_ms",
        "partners_concurrent_s",
    ):
        assert key in rows, key
        assert rows[key]["value"] == rows[key]["value"], f"{key} is NaN"  # measured
    for bench in (
        "1 latency",
        "2 payment",
        "3 load",
        "4 ledger",
        "5 start-up",
        "6 fan-out",
        "7 bulk",
        "8 e2ee",
        "9 partners",
    ):
        assert f"\n{bench} " in printed
    assert "results written to" in printed


def test_the_correctness_the_benchmarks_check_holds(
    smoke: tuple[dict[str, Any], str, Path],
) -> None:
    report, _, _ = smoke
    rows = {row["key"]: row for row in report["rows"]}
    details = report["details"]
    assert rows["load_errors"]["value"] == 0, details["matrix"]["load"]["errors"]
    assert rows["load_ledger_sound"]["met"] is True, details["matrix"]
    assert details["ledger"]["ledgers_consistent"] is True
    assert details["bulk"]["sqlite"]["ledger_consistent"] is True
    assert rows["check_passed"]["met"] is True, details["startup"]
    fanout = details["fanout"]
    for platform in ("telegram", "matrix"):
        assert fanout[platform]["delivered"] == fanout[platform]["channels"] == 3
        assert fanout[platform]["duplicates"] == 0
    # Encrypted, the bot answered every round trip and started again on its kept store.
    e2ee = details["e2ee"]
    assert all(len(samples) == 4 for samples in e2ee["latency_s"].values()), e2ee
    assert e2ee["bot_errors"] == [] and e2ee["start_errors"] == [], e2ee
    # Between two partner bots every payment arrived, once, and both ledgers mirror.
    partners = details["partners"]
    assert rows["partners_concurrent_errors"]["value"] == 0, partners
    assert partners["concurrent"]["payments"] == 10 and partners["mirror_problems"] == []
    assert len(partners["across_s"]) == len(partners["local_s"]) == 3
    # The smoke run's Telegram server is stricter than the bot expects: 429s were waited out.
    assert fanout["telegram"]["answered_429"] >= 1


def test_the_readme_table_comes_from_the_results_file(
    smoke: tuple[dict[str, Any], str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    report, _, results = smoke
    assert main(["--readme", "--json", str(results)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Measured on ")
    assert "| benchmark | figure | value | baseline | ratio | target | met? |" in printed
    table_rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 2 + len(report["rows"])
