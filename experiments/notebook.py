"""The practical as one executed Jupyter notebook, practical.ipynb beside index.html, as the assignment hands it in.

    python -m experiments.practical --notebook                     # run (or reuse) every part, write the report and the notebook
    python -m experiments.practical --budget standard --report-only --notebook   # from finished parts, nothing retrained

The notebook is the report's own document (experiments.document): its headings, prose, tables and captions as
Markdown cells, its `Cell` blocks as code cells, each figure as a cell that shows it. Its first code cell fixes the
parameters (budget, runs folder, data folder); the next one runs the practical through `experiments.practical`,
which reuses every finished part whose command and configs are unchanged: executed over a finished practical it
takes seconds, over an empty runs folder it runs the whole practical at its budget. It is executed by a real
Jupyter kernel (nbclient) before it is written, so it opens with every output in place, and
`jupyter nbconvert --to html practical.ipynb` turns it into a page.

What the notebook's cells call is experiments.cells (kept small: the work is the project's).
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.document import Cell, Code, Document, Figure, Heading, Para, Table, block_markdown

NOTEBOOK = "practical.ipynb"
KERNEL = "python3"


def project_root() -> Path:
    """The project's folder (where pyproject.toml is) for an editable install, else the working folder: a
    relative RUNS_DIR is taken from there, as experiments.practical takes it from where it is started."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


# --- the document as a notebook -------------------------------------------------------------------------------------


def parameters_cell(budget: str, runs_dir: str, seeds: int, data_dir: str | None = None) -> Cell:
    return Cell(
        "# The parameters, fixed here once: nothing is asked while the notebook runs.\n"
        f"BUDGET = {budget!r}  # what each part trains: epochs, data sizes, ladders (configs/experiments/budgets.yaml)\n"
        f"SEEDS = {seeds}  # seeds of the specified CNN in each framework (0, 1, ...; the ladders' are the budget's)\n"
        f"RUNS_DIR = {runs_dir!r}  # where the runs are (a relative path is taken from the project's folder)\n"
        f"DATA_DIR = {data_dir!r}  # the datasets' folder; None: $LIGHTNING_IMPL_DATA, else ~/.cache/lightning_impl/data")


RUN_CELL = Cell(
    "from experiments import cells\n\n"
    "# Every part of the practical, each one command of the project; a finished part whose command and configs\n"
    "# are unchanged is reused, so over a finished practical this takes seconds.\n"
    "records = cells.run_practical(BUDGET, RUNS_DIR, DATA_DIR, SEEDS)")


def figure_cell(figure: Figure, root: Path) -> str:
    return f"cells.show({figure.path.relative_to(root).as_posix()!r})"


def to_notebook(doc: Document, root: Path):
    """The document as an nbformat notebook: consecutive text blocks in one Markdown cell, each `Cell` a code cell,
    each figure a code cell that shows it followed by its caption."""
    import nbformat.v4 as nbf

    cells, text = [], [f"# {doc.title}", ""]

    def flush() -> None:
        if any(line.strip() for line in text):
            cells.append(nbf.new_markdown_cell("\n".join(text).strip()))
        text.clear()

    for block in doc.blocks:
        if isinstance(block, Cell):
            flush()
            cells.append(nbf.new_code_cell(block.source))
        elif isinstance(block, Figure):
            flush()
            cells.append(nbf.new_code_cell(figure_cell(block, root)))
            text += [f"*{block.caption}*", ""]
        elif isinstance(block, (Heading, Para, Table, Code)):
            if isinstance(block, Heading) and block.level == 2:
                flush()  # a section starts a cell of its own
            text += block_markdown(block, root)
        else:
            raise TypeError(f"not a block: {block!r}")
    flush()
    nb = nbf.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# What Jupyter, IPython, matplotlib and Keras would otherwise write under the home folder while the kernel runs
# (connection files, history, caches, keras.json): kept in a scratch folder beside the notebook, removed after.
SCRATCH_ENV = {"JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_DATA_DIR": "data", "IPYTHONDIR": "ipython",
               "MPLCONFIGDIR": "matplotlib", "KERAS_HOME": "keras"}


def execute(nb, folder: Path):
    """Run every cell in a real kernel, the notebook's folder as the working folder; a failing cell raises
    `NotebookError` naming the cell and its error. Nothing is written outside ``folder`` but by the cells."""
    import shutil
    import tempfile

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    folder = Path(folder).resolve()  # the kernel starts in it: a relative scratch path would land below it
    scratch = Path(tempfile.mkdtemp(prefix=".kernel-", dir=folder))
    saved = {k: os.environ.get(k) for k in SCRATCH_ENV}
    for k, v in SCRATCH_ENV.items():
        (scratch / v).mkdir()
        os.environ[k] = str(scratch / v)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=None, resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except CellExecutionError as err:
        raise NotebookError(f"a cell of {folder / NOTEBOOK} failed: {str(err).strip().splitlines()[-1]}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)
    return nb


class NotebookError(RuntimeError):
    """A cell failed while the notebook was executed."""


def write(doc: Document, root: Path) -> Path:
    """Build, execute and write ``root``/practical.ipynb (written whole, or not at all)."""
    import nbformat

    from core.runs import write_text

    nb = execute(to_notebook(doc, root), root)
    path = root / NOTEBOOK
    write_text(path, nbformat.writes(nb))
    return path


# --- what the cells call ---------------------------------------------------------------------------------------------
