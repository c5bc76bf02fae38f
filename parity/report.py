"""The parity results as text tables (one per model pair: a column per Keras backend) and as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from core import tables
from parity.checks import Row

RESULT = {True: "pass", False: "FAIL", None: "skip"}
FROM_RESULT = {v: k for k, v in RESULT.items()}
HEADER = ("check", "value", "bound", "result")

# results of several backends: {backend: {pair: [Row, ...]}}
Results = dict[str, dict[str, list[Row]]]


def _render(cells: list[tuple[str, ...]]) -> list[str]:
    return tables.markdown(cells[0], cells[1:], pad=True)


def table(pair_name: str, rows: list[Row]) -> str:
    """One backend's rows: check, value, bound, result."""
    cells = [HEADER] + [(r.check, r.value, r.bound, RESULT[r.passed]) for r in rows]
    return "\n".join([f"## {pair_name}", "", *_render(cells)])


def backend_table(pair_name: str, by_backend: dict[str, list[Row]]) -> str:
    """One pair on several backends: check and bound, then "result: value" per backend. A row's bound is the
    same on every backend; where one differs it is written in that backend's cell."""
    backends = list(by_backend)
    checks: dict[str, str] = {}  # check -> bound (the first backend's)
    cell: dict[tuple[str, str], str] = {}
    for b, rows in by_backend.items():
        for r in rows:
            bound = checks.setdefault(r.check, r.bound)
            cell[r.check, b] = f"{RESULT[r.passed]}: {r.value}" + (f" (bound {r.bound})" if r.bound != bound else "")
    cells = [("check", "bound", *backends)]
    cells += [(c, bound, *(cell.get((c, b), "-") for b in backends)) for c, bound in checks.items()]
    return "\n".join([f"## {pair_name}", "", *_render(cells)])


def backend_tables(results: Results) -> str:
    pairs = list(dict.fromkeys(p for by_pair in results.values() for p in by_pair))
    return "\n\n".join(backend_table(p, {b: results[b].get(p, []) for b in results}) for p in pairs) + "\n"


def failed(results: dict[str, list[Row]]) -> list[str]:
    return [f"{name}: {r.check}" for name, rows in results.items() for r in rows if r.passed is False]


def failed_backends(results: Results) -> list[str]:
    return [f"{b}: {f}" for b, by_pair in results.items() for f in failed(by_pair)]


def _row(r: Row) -> dict:
    d = asdict(r) | {"result": RESULT[r.passed]}
    if d["number"] is not None and not math.isfinite(d["number"]):
        d["number"] = str(d["number"])  # JSON has no inf/nan
    return d


def to_json(results: Results) -> str:
    """{"passed": ..., "backends": {backend: {"passed": ..., "pairs": {pair: [row, ...]}}}}"""
    payload = {
        "passed": not failed_backends(results),
        "backends": {
            b: {"passed": not failed(by_pair), "pairs": {name: [_row(r) for r in rows] for name, rows in by_pair.items()}}
            for b, by_pair in results.items()
        },
    }
    return json.dumps(payload, indent=2, allow_nan=False, default=str)


def rows_from_json(payload: dict, backend: str) -> dict[str, list[Row]]:
    """One backend's rows back from to_json's output."""
    pairs = payload["backends"][backend]["pairs"]
    return {
        name: [Row(r["check"], r["value"], r["bound"], FROM_RESULT[r["result"]],
                   float(r["number"]) if r["number"] is not None else None) for r in rows]
        for name, rows in pairs.items()
    }
