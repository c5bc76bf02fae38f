"""The one Markdown table writer: the report's tables, the experiments' result files and the parity tables."""

from __future__ import annotations

from collections.abc import Sequence


def cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(header: Sequence, rows: Sequence[Sequence], align: str | None = None, pad: bool = False) -> list[str]:
    """A Markdown table as lines. ``align``: one letter per column, ``r`` right-aligned (numbers) else left;
    ``pad``: columns padded to one width, for a terminal (the same table, read as text)."""
    cells = [[cell(c) for c in header]] + [[cell(c) for c in row] for row in rows]
    align = align or "l" * len(header)
    if pad:
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
        rule = "|" + "|".join("-" * (w + 1) + (":" if a == "r" else "-") for w, a in zip(widths, align)) + "|"
    else:
        line = lambda row: "| " + " | ".join(row) + " |"  # noqa: E731
        rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return [line(cells[0]), rule, *map(line, cells[1:])]
