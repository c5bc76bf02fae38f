"""The parity results as text tables (one per model pair) and as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from parity.checks import Row

RESULT = {True: "pass", False: "FAIL", None: "skip"}
HEADER = ("check", "value", "bound", "result")


def table(pair_name: str, rows: list[Row]) -> str:
    cells = [HEADER] + [(r.check, r.value, r.bound, RESULT[r.passed]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    line = lambda c: "| " + " | ".join(s.ljust(w) for s, w in zip(c, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"## {pair_name}", "", line(cells[0]), rule, *map(line, cells[1:])])


def failed(results: dict[str, list[Row]]) -> list[str]:
    return [f"{name}: {r.check}" for name, rows in results.items() for r in rows if r.passed is False]


def _row(r: Row) -> dict:
    d = asdict(r) | {"result": RESULT[r.passed]}
    if d["number"] is not None and not math.isfinite(d["number"]):
        d["number"] = str(d["number"])  # JSON has no inf/nan
    return d


def to_json(results: dict[str, list[Row]]) -> str:
    payload = {
        "passed": not failed(results),
        "pairs": {name: [_row(r) for r in rows] for name, rows in results.items()},
    }
    return json.dumps(payload, indent=2, allow_nan=False, default=str)
