"""The benchmarks' common currency: rows of one table, printed and written as JSON."""

from __future__ import annotations

import math
import os
import platform
import statistics
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    """One measured figure; ``baseline`` is measured in the same run, ``met`` None = info."""

    bench: str
    key: str
    label: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f} /s" if value >= 100 else f"{value:,.1f} /s"
    if unit == "ms":
        return f"{value:,.1f} ms" if value >= 10 else f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def verdict(met: bool | None) -> str:
    return "info" if met is None else ("yes" if met else "NO")


HEADER = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met?")


def cells(row: Row) -> tuple[str, ...]:
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
    return (
        row.bench,
        row.label,
        show(row.value, row.unit),
        show(row.baseline, row.unit),
        ratio,
        row.target or "-",
        verdict(row.met),
    )


def table(rows: list[Row]) -> str:
    """A fixed-width table for the terminal; numbers right-aligned."""
    lines = [HEADER, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    numeric = {2, 3, 4}
    out = []
    for n, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.rjust(widths[i]) if i in numeric and n else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "| " + " | ".join("---" for _ in HEADER) + " |"]
    for row in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |")
    return "\n".join(out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def machine_line(info: dict[str, Any]) -> str:
    return f"{info['cores']} cores, {info['cpu']}, Python {info['python']}, {info['system']}"


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def quantile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank rule; NaN without samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
