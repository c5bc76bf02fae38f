"""The numbers of the report and of the experiments: mean and spread over seeds, and how each is written
(percentages, p-values, durations); ``Numbers``, the registry of every figure the report
states with the command behind it. One place, so that one name has one meaning."""

from __future__ import annotations

import statistics


class Numbers:
    """Every number the report states: key -> value, the text shown, and the command and configs behind it."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def add(self, key: str, value: float | int, text: str, record: dict | None = None, unit: str = "") -> str:
        self.entries[key] = {"value": value, "text": text, "unit": unit,
                             "command": record["command"] if record else None,
                             "configs": record.get("configs", []) if record else []}
        return text

    def value(self, key: str) -> float:
        return self.entries[key]["value"]

    def text(self, key: str) -> str:
        return self.entries[key]["text"]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for one value: a single seed has no spread)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def plural(n, word: str) -> str:
    """``n word`` with the word in the plural unless n is 1 (n as given, a number or its registered text)."""
    return f"{n} {word}" if str(n).replace(",", "") in ("1", "1.0") else f"{n} {word}s"


def pct(x: float, digits: int = 2) -> str:
    """A fraction as a percentage: 0.9931 -> '99.31 %'."""
    return f"{100 * x:.{digits}f} %"


def pct_mean_std(values: list[float]) -> str:
    """Fractions over seeds as 'mean ± std %' ('mean %' for one seed)."""
    m, s = mean_std(values)
    return f"{100 * m:.2f} ± {100 * s:.2f} %" if s == s else f"{100 * m:.2f} %"


def pp_mean_std(mean: float, std: float) -> str:
    """A (mean, std) of fractions in percentage points without the unit: '99.31 ± 0.03'; '—' for a step not run."""
    if mean != mean:
        return "—"
    return f"{100 * mean:.2f}" + ("" if std != std else f" ± {100 * std:.2f}")


def p_text(p: float) -> str:
    """A p-value as the report and the ladders write it: two significant digits ('< 1e-300' below a float's range)."""
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def duration(seconds: float) -> str:
    """Wall time for a reader: '42.0 s', '3 min 07 s', '2 h 05 min'."""
    if seconds < 100:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
