"""The practical's report, built from the finished parts' own output files and nothing typed by hand.

    python -m experiments.practical --report-only --budget smoke     # rebuild it from the finished parts
    python -m experiments.report --update-docs results/practical_standard.json   # README's results table from a results file

Writes into the report folder: results.json (every number the report states, each with the command and configs that
produced it, and the environment), report.md, index.html (standalone: figures embedded) and figures/.
Every figure in the text goes through `Numbers.add`, which is what puts it in results.json; the discussion
(experiments.discussion) reads only those numbers.

The report in parts: experiments.records reads the parts' files and the machine, experiments.sections writes the
sections (their figures drawn by core.plots), experiments.discussion the prose, experiments.document renders
Markdown and HTML, experiments.notebook the notebook, experiments.docs_sync README's and docs/' tables; this module
puts them together.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from core import budgets, flags
from core.runs import UsageError, write_json, write_text
from experiments import discussion, notebook, sections
from experiments.docs_sync import headline_rows, update_docs
from experiments.document import Heading, Para, Table, link, markdown, to_html
from experiments.records import environment

COMMANDS = "Appendix: the commands behind the headline figures"


def build(records: list[dict], budget: str, out: Path, command: str, runs_dir: str = "runs",
          with_notebook: bool = False, seeds: int | None = None, data_dir: str | None = None,
          sitting: dict | None = None) -> Path:
    """Write the report folder from the parts' records; the path of index.html. ``with_notebook``: also
    practical.ipynb, executed (``runs_dir`` is the runs folder as the practical was given it); ``sitting``: the
    call that ran all these parts (experiments.practical.last_sitting), whose elapsed time the overview states."""
    final = Path(out)
    # Built beside the old report and swapped in at the end: a failure leaves the previous report whole, and a
    # stale figure never survives into the new one (the folder is generated, never edited).
    out = final.with_name(final.name + ".partial")
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    env = environment()
    ctx = sections.Context(records, budget, out, command)
    sections.section_overview(ctx, env, sitting)

    sections.section_running(ctx, runs_dir, seeds or budgets.budget("practical", budget)["seeds"], data_dir)
    sections.section_methods(ctx)
    specified = sections.section_specified(ctx)
    sections.section_baseline(ctx, specified)
    sections.section_ladders(ctx, specified)
    sections.section_improved(ctx, specified)
    discussion.saturation(ctx)
    sections.section_denoiser(ctx)
    sections.section_denoise(ctx)
    sections.section_parity(ctx)
    discussion.summary(ctx, specified)
    discussion.ladders_across_frameworks(ctx)
    discussion.conclusion(ctx)
    rows = headline_rows(ctx.numbers.entries)
    sections.section_environment(ctx, env)
    ctx.doc.add(Heading(COMMANDS), Para("The command behind each headline figure (each part's own command and wall "
                                        "time are in the appendix above)."),
                Table(["what", "command"], [[what, command] for what, _, command in rows], align="ll"))
    sections.section_parity_checks(ctx)
    # The results first: what a reader looks for, each row linked to the command behind it.
    headline = [Heading("Headline results"),
                Table(["what", "figure", "source"], [[what, figure, link("command", COMMANDS)] for what, figure, _ in rows],
                      align="lll")]
    first = next(i for i, b in enumerate(ctx.doc.blocks) if isinstance(b, Heading))
    ctx.doc.blocks[first:first] = headline
    write_json(out / "results.json", {"budget": budget, "command": command, "environment": env,
                                      "parts": records, "numbers": ctx.numbers.entries, "discussion": ctx.claims,
                                      "tables": ctx.tables})
    write_text(out / "report.md", markdown(ctx.doc, out))
    write_text(out / "index.html", to_html(ctx.doc))
    if with_notebook:
        try:
            notebook.write(ctx.doc, out)
        except notebook.NotebookError as err:
            raise UsageError(f"{err} (the previous report, if any, is kept; the one being built is in {out})") from None
    if final.exists():
        shutil.rmtree(final)
    out.rename(final)
    return final / "index.html"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--update-docs", type=Path, metavar="RESULTS_JSON", required=True,
                   help="render README.md's results table and the docs/ pages' generated tables from this results file")
    p.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    changed = update_docs(args.update_docs, args.root)
    print("updated: " + (", ".join(map(str, changed)) if changed else "nothing (the docs agree with the results)"))


if __name__ == "__main__":
    sys.exit(main())
