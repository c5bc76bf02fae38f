"""A report as a list of blocks, written once and rendered three times: Markdown (report.md), one standalone HTML
page (index.html: styles inline, figures embedded as data URIs, so it opens anywhere, from a mail or a USB stick,
with no server and nothing beside it) and a Jupyter notebook (experiments.notebook: the same blocks as Markdown
cells, `Cell` blocks as the code cells that do the work)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from core import tables


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str  # **bold**, `code` and [links](#a-heading) are the only markup, rendered in both formats


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    align: str = ""  # one letter per column: l or r (default: numbers right, text left)


@dataclass
class Figure:
    path: Path  # a PNG in the report's figures/ folder
    caption: str


@dataclass
class Code:
    text: str


@dataclass
class Cell:
    """Code that does the work through the project's API: a code cell of the notebook (run when it is executed),
    shown as a listing on the page and in report.md."""

    source: str


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


def _column_align(table: Table) -> str:
    if table.align:
        return table.align
    numeric = re.compile(r"^\**[+−\-–]?[\d.,]+\b(?!_)")  # a figure, perhaps bold; not a name such as 00_base

    def is_number(cell: str) -> bool:
        return cell in ("", "—") or bool(numeric.match(cell))

    return "".join("r" if table.rows and all(is_number(r[i]) for r in table.rows) else "l"
                   for i in range(len(table.header)))


def block_markdown(b, root: Path) -> list[str]:
    """One block as Markdown lines (a blank line after it); figures link their file relative to ``root``."""
    if isinstance(b, Heading):
        return ["#" * b.level + " " + b.text, ""]
    if isinstance(b, Para):
        return [b.text, ""]
    if isinstance(b, Table):
        align = _column_align(b)
        out = [f"*{b.caption}*", ""] if b.caption else []
        return out + tables.markdown(b.header, b.rows, align) + [""]
    if isinstance(b, Figure):
        return [f"![{b.caption}]({b.path.relative_to(root).as_posix()})", "", f"*{b.caption}*", ""]
    if isinstance(b, Code):
        return ["```", b.text, "```", ""]
    if isinstance(b, Cell):
        return ["```python", b.source, "```", ""]
    raise TypeError(f"not a block: {b!r}")


def markdown(doc: Document, root: Path) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        out += block_markdown(b, root)
    return "\n".join(out)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\[([^\]]+)\]\(#([a-z0-9-]+)\)", r'<a href="#\2">\1</a>', text)  # a link within the page
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def link(text: str, heading: str) -> str:
    """A link to a heading of the same document, in the markup both renderings read."""
    return f"[{text}](#{_slug(heading)})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


STYLE = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.8em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em;display:block;overflow-x:auto;max-width:100%} th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3} td.r{text-align:right;font-variant-numeric:tabular-nums} caption{caption-side:top;text-align:left;font-style:italic;padding:.3em 0}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{font-style:italic;color:#555}
code,pre{background:#f6f6f6;border-radius:3px} code{padding:0 .25em;overflow-wrap:anywhere} pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}
pre.cell{background:#f4f7fb;border-left:3px solid #6a8fc7}
nav{background:#fafafa;border:1px solid #eee;padding:.5em 1em;margin:1em 0} nav a{margin-right:1em}
"""


def to_html(doc: Document) -> str:
    toc = [f'<a href="#{_slug(b.text)}">{html.escape(b.text)}</a>' for b in doc.blocks if isinstance(b, Heading) and b.level == 2]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(doc.title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>", f"<nav>{' '.join(toc)}</nav>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out.append(f'<h{b.level} id="{_slug(b.text)}">{html.escape(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            align = _column_align(b)
            out.append("<table>" + (f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""))
            out.append("<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.header) + "</tr>")
            for row in b.rows:
                out.append("<tr>" + "".join(f'<td class="{a}">{_inline(c)}</td>' for a, c in zip(align, row)) + "</tr>")
            out.append("</table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.path.read_bytes()).decode()
            out.append(f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
        elif isinstance(b, Code):
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif isinstance(b, Cell):
            out.append(f'<pre class="cell" title="a code cell of practical.ipynb">{html.escape(b.source)}</pre>')
    out.append("</body></html>")
    return "\n".join(out)
