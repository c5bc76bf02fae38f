"""The practical's report: its document model, the numbers-against-results.json check, the README block rendered
from the committed results file, and (slow) the whole smoke budget built end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from experiments import docs_sync
from experiments.document import Document, Figure, Heading, Para, Table, markdown, to_html

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").glob("practical_*.json"))
# A number in running text: not part of a name (01_batch_norm, conv2, σ-labels such as "sigma0.1" in file names).
# A dataset's name (CIFAR-10) is a name too: a number right after a letter and a hyphen is not a result.
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)[-+]?\d[\d,]*(?:\.\d+)?(?![\w])")


def numbers_in(text: str) -> set[str]:
    """The numeric tokens of a text, as written (thousands separators and signs dropped). Text between “curly
    quotes” is a name quoted from a config (a ladder step's change, discussion.quote), not a result: left out."""
    text = re.sub(r"“[^”]*”", "", text)
    return {t.replace(",", "").lstrip("+-") for t in NUMBER.findall(text)}


def unregistered(results: dict) -> dict[str, set[str]]:
    """Every claim's numbers that no registered number's text holds: what the discussion states without a source."""
    known = set().union(*(numbers_in(e["text"]) for e in results["numbers"].values()))
    return {c: missing for c in results["discussion"] if (missing := numbers_in(c) - known)}


def png(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return data


def test_numbers_in_reads_running_text_only():
    assert numbers_in("step 01_batch_norm gained +0.35 pp on 6,000 images") == {"0.35", "6000"}
    assert numbers_in("dropped: “dropout 0.3” at σ 0.1") == {"0.1"}
    assert numbers_in("the CIFAR-10 ladder at 91.5 %, -0.3 pp") == {"91.5", "0.3"}


def test_unregistered_catches_a_number_without_a_source():
    results = {"numbers": {"a": {"text": "99.20 ± 0.15 %"}}, "discussion": ["reaches 99.20 %, spread 0.15 pp",
                                                                            "reaches 99.30 %"]}
    assert unregistered(results) == {"reaches 99.30 %": {"99.30"}}


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs["src"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])


def test_document_renders_markdown_and_standalone_html(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "f.png")
    doc = Document("t", [Heading("Part one"), Para("**bold** and `code` <b>escaped</b>"),
                         Table(["a", "b"], [["x|y", "1.5 %"]], caption="c"), Figure(tmp_path / "f.png", "cap")])
    md = markdown(doc, tmp_path)
    assert "| x\\|y | 1.5 % |" in md and "|---|---:|" in md and "![cap](f.png)" in md
    page = to_html(doc)
    assert "<strong>bold</strong>" in page and "&lt;b&gt;escaped&lt;/b&gt;" in page
    parser = _Images()
    parser.feed(page)
    assert parser.sources and all(s.startswith("data:image/png;base64,") for s in parser.sources)
    assert parser.links == ["part-one"] and 'id="part-one"' in page


@pytest.mark.parametrize("results_file", COMMITTED, ids=lambda p: p.name)
def test_readme_results_table_is_rendered_from_the_committed_results(results_file):
    """README's results block is exactly what `python -m experiments.report --update-docs` renders."""
    text = (ROOT / "README.md").read_text()
    assert docs_sync.BEGIN in text, "README.md has no generated results block"
    block = text.split(docs_sync.BEGIN, 1)[1].split(docs_sync.END, 1)[0]
    assert docs_sync.BEGIN + block + docs_sync.END == docs_sync.readme_table(json.loads(results_file.read_text())), (
        f"README.md's results table disagrees with {results_file.name}: run "
        f"python -m experiments.report --update-docs {results_file.relative_to(ROOT)}")


@pytest.mark.parametrize("results_file", COMMITTED, ids=lambda p: p.name)
def test_committed_results_state_nothing_without_a_source(results_file):
    results = json.loads(results_file.read_text())
    assert not unregistered(results)
    assert all(e["command"] for e in results["numbers"].values())


def test_there_is_a_committed_results_file():
    assert COMMITTED, "results/practical_<budget>.json is what README's table is rendered from"


def practical(runs: Path) -> subprocess.CompletedProcess:
    # Two parts at a time: on CI's 2 cores the small smoke parts leave a core idle much of the time.
    cmd = [sys.executable, "-m", "experiments.practical", "--budget", "smoke", "--runs-dir", str(runs), "--notebook",
           "--jobs", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """The whole practical at the smoke budget, built once for the tests below: (runs folder, stdout, index.html)."""
    runs = tmp_path_factory.mktemp("practical") / "runs"
    first = practical(runs)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return runs, first.stdout, Path(first.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_quick_practical_builds_the_whole_report(quick_report):
    runs, stdout, index = quick_report
    out = index.parent
    assert index.name == "index.html" and (out / "report.md").is_file()
    assert "left in all" in stdout  # progress with an estimate of what remains
    assert "ran side by side (`--jobs`)" in (out / "report.md").read_text()  # overlapping wall times are said to be

    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["packages"]["torch"] and results["parts"]
    assert not unregistered(results), "a discussion sentence states a number that results.json does not hold"
    assert all(e["command"] for e in results["numbers"].values())
    assert len(results["discussion"]) >= 3

    figures = sorted((out / "figures").glob("*.png"))
    names = {f.name for f in figures}
    for needed in ("specified_learning_curves.png", "specified_confusion_matrix.png", "specified_misclassified.png",
                   "hog_features.png", "ladder_mnist_lightning.png", "denoise_metrics_vs_sigma.png",
                   "denoiser_learning_curves.png", "denoiser_grid.png"):
        assert needed in names, f"{needed} missing from the report's figures"
    import matplotlib.image

    for f in figures:
        png(f)
        assert min(matplotlib.image.imread(f).shape[:2]) > 50

    page = index.read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.sources) == len(figures)
    assert all(f'id="{anchor}"' in page for anchor in parser.links)
    md = (out / "report.md").read_text()
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / ref).is_file(), f"report.md refers to a missing {ref}"

    # Tables have the rows they should: a ladder table a row per step, the architecture a row per layer + total.
    from core import configs
    from lightning_impl.models import SpecifiedCNN
    from parity.shapes import torch_leaves

    for dataset in ("mnist", "cifar10"):
        steps = len(list((configs.folder() / "ablation" / dataset).glob("*.yaml")))
        section = md.split(f"### {'MNIST' if dataset == 'mnist' else 'CIFAR-10'}, Lightning", 1)[1]
        rows = [l for l in section.split("| step |", 1)[1].split("\n\n", 1)[0].splitlines() if l.startswith("| 0")]
        assert len(rows) == steps, section[:800]
    arch = md.split("## Specified CNN on MNIST", 1)[1].split("| layer |", 1)[1].split("\n\n", 1)[0]
    assert len([l for l in arch.splitlines() if l.startswith("| ")]) == len(torch_leaves(SpecifiedCNN())) + 1  # + total


@pytest.mark.slow
def test_the_prose_and_the_final_architecture_follow_the_ladder_tables(quick_report):
    """What the discussion says was kept, left within noise or worse is each step's decision in its ladder table; no
    step is credited that the table does not keep; and the final architecture is the kept chain."""
    _, _, index = quick_report
    out = index.parent
    results = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    ladders = {name: t for name, t in results["tables"].items() if name.startswith("ladder_")}
    assert ladders
    verdicts = {"so kept: ": "kept", "so left out (a tie": "within noise", "Worse beyond noise, so left out: ": "worse"}
    for name, table in ladders.items():
        decision = {row[0]: row[table["header"].index("decision")] for row in table["rows"]}
        dataset, framework = name.split("_")[1:]
        title = {"mnist": "MNIST", "cifar10": "CIFAR-10"}[dataset]
        claim = next(c for c in results["discussion"] if c.startswith(f"The {title} ladder ({framework.capitalize()}) kept"))
        stated = {}
        for marker, verdict in verdicts.items():
            if marker in claim:
                segment = claim.split(marker, 1)[1].split(". ", 1)[0]
                stated.update({step: verdict for step in re.findall(r"\((\d\d_\w+):", segment)})
        assert stated == {s: d for s, d in decision.items() if d in verdicts.values()}, (name, claim)
        kept = [s for s, d in decision.items() if d in ("first", "kept")]
        assert f"kept {len(kept) - 1} of the {len(stated)} changes" in claim
        if name.endswith("_lightning"):
            section = md.split(f"### Final architecture, {title}", 1)[1]
            assert section.split("\n\n", 2)[1].startswith(f"The chain this ladder kept: {', '.join(kept)};"), section[:300]
    assert "bf16" not in " ".join(results["discussion"])  # no speed-only change is a step, so none is credited


@pytest.mark.slow
def test_a_second_call_reuses_every_finished_part(quick_report):
    runs, _, index = quick_report
    again = practical(runs)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"(\d+) parts, \1 finished earlier and reused, 0 to run", again.stdout), again.stdout[:500]
    assert Path(again.stdout.strip().splitlines()[-1]) == index and index.is_file()


def _run_cell_output(nb) -> str:
    cell = next(c for c in nb.cells if c.cell_type == "code" and "run_practical" in c.source)
    return "".join(o.get("text", "") for o in cell.outputs)


@pytest.mark.slow
def test_the_notebook_is_executed_with_every_output_and_the_reports_numbers(quick_report):
    import base64

    import nbformat

    _, _, index = quick_report
    out = index.parent
    nb = nbformat.read(out / "practical.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    markdown_text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert code[0].source.startswith("# The parameters") and "BUDGET = 'smoke'" in code[0].source
    assert all(c.execution_count for c in code), "a code cell was not executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    images = [o["data"]["image/png"] for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(list((out / "figures").glob("*.png")))  # every figure of the report, shown
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # The same prose and tables as the page, from the same document: every claim and table row results.json holds.
    results = json.loads((out / "results.json").read_text())
    for claim in results["discussion"]:
        assert claim in markdown_text
    from core.tables import cell

    for name, table in results["tables"].items():
        for row in table["rows"]:
            assert "| " + " | ".join(map(cell, row)) + " |" in markdown_text, (name, row)
    # ... and every other line of report.md (the same document rendered as Markdown), but its code and image links,
    # which are the notebook's code cells.
    fenced = False
    for line in (out / "report.md").read_text().splitlines():
        fenced = fenced != line.startswith("```")
        if not (fenced or line.startswith(("```", "![")) or not line.strip()):
            assert line in markdown_text, line
    assert "12 parts, 12 finished earlier and reused, 0 to run" in _run_cell_output(nb)
    assert any("SpecifiedCNN(" in o.get("text", "") for c in code for o in c.outputs)  # the given CNN, summarised


@pytest.mark.slow
def test_executing_the_notebook_again_reruns_nothing(quick_report, tmp_path, monkeypatch):
    import nbformat

    from experiments import notebook

    home = tmp_path / "home"  # what the kernel would write under the user's home folder: nothing
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    runs, _, index = quick_report
    records = sorted((runs / "practical" / "smoke" / "parts").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in records}
    nb = nbformat.read(index.parent / "practical.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.execute(nb, index.parent)
    assert re.search(r"(\d+) parts, \1 finished earlier and reused, 0 to run", _run_cell_output(nb))
    assert {p: p.stat().st_mtime_ns for p in records} == before  # no part ran, no record rewritten
    assert not list(home.iterdir()), sorted(str(p) for p in home.rglob("*"))[:10]
    assert not list(index.parent.glob(".kernel-*"))  # its scratch folder removed
    assert sorted(p.name for p in index.parent.iterdir()) == ["figures", "index.html", "practical.ipynb", "report.md",
                                                              "results.json"]
    html = tmp_path / "practical.html"  # the HTML export README tells of
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(tmp_path),
                           str(index.parent / "practical.ipynb")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert html.is_file() and "<img" in html.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_the_report_renders_in_a_real_browser(quick_report, tmp_path):
    """Headless Chromium opens index.html from disk (no server) and draws a page that is not blank."""
    _, _, index = quick_report
    shot = tmp_path / "screenshot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
                    f"--screenshot={shot}", index.as_uri()], capture_output=True, timeout=120, check=True)
    import matplotlib.image

    png(shot)
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1600, 1280) and pixels.std() > 0.05  # text, tables and figures, not a blank page


@pytest.mark.parametrize("budget", ["smoke", "standard", "full"])
def test_every_budget_builds_commands_its_entry_points_accept(budget, tmp_path):
    """The standard and full budgets take hours to run; their commands are checked here without running them."""
    import importlib

    from experiments import practical

    found = practical.parts(budget, tmp_path / "runs")
    assert len({p.name for p in found}) == len(found)
    kinds = {p.kind for p in found}
    assert kinds == {"specified", "improved", "denoiser", "baseline", "ladder", "denoise", "parity"}
    for part in found:
        assert practical.estimate(budget, part) > 0
        if "--budget" in part.argv:  # one vocabulary: each part runs at the practical's own budget name
            assert part.argv[part.argv.index("--budget") + 1] == budget
        module = part.argv[0] if part.argv[0] != "parity" else "parity.__main__"
        parse = getattr(importlib.import_module(module), "parse_args", None)
        if parse is not None:  # argparse entry points: the command line parses (LightningCLI ones run in smoke)
            parse(part.argv[1:])
        for config in part.configs:
            assert (practical.configs.folder() / config).is_file()


def test_an_improved_recipe_can_train_fewer_seeds_than_its_budget(tmp_path, monkeypatch):
    """A fourth item in a budget's improved entry is that recipe's seed count (standard: CIFAR-10's whitened net once,
    a run costing ~30 CPU minutes), never more than the budget's own seeds; full trains it over all three, in both
    frameworks."""
    from core import budgets
    from experiments import practical

    def improved(budget, seeds=None):
        return [p.name for p in practical.parts(budget, tmp_path / "runs", seeds) if p.kind == "improved"]

    assert [n for n in improved("standard") if "cifar10" in n] == ["improved_cifar10_lightning_seed0"]
    assert len([n for n in improved("standard") if "mnist" in n]) == 6
    assert [n for n in improved("full") if "cifar10" in n] == [f"improved_cifar10_{fw}_seed{s}"
                                                              for fw in ("lightning", "keras") for s in range(3)]
    real = budgets.budget

    def many(command, name):
        spec = real(command, name)
        if command == "practical":
            spec = {**spec, "improved": {**spec["improved"], "recipes": [["cifar10", "lightning", "cifar10_whitened", 5]]}}
        return spec

    monkeypatch.setattr(budgets, "budget", many)
    assert len(improved("standard")) == 3 and len(improved("standard", seeds=2)) == 2


def test_a_part_runs_again_when_the_budget_section_it_reads_changes(tmp_path, monkeypatch):
    """The denoising study and the ladders read their budget's section of configs/experiments/budgets.yaml: an edit
    there is a new run, while an edit of another command's section reuses them."""
    from core import budgets
    from experiments import practical

    def keys():
        return {p.name: p.key() for p in practical.parts("standard", tmp_path / "runs")}

    before, real = keys(), budgets.budget

    def edited(section):
        def budget(command, name):
            spec = real(command, name)
            return {**spec, "edited": True} if command == section else spec
        return budget

    monkeypatch.setattr(budgets, "budget", edited("denoising"))
    after = keys()
    assert {n for n in before if before[n] != after[n]} == {"denoise"}
    monkeypatch.setattr(budgets, "budget", edited("ablation"))
    after = keys()
    assert {n for n in before if before[n] != after[n]} == {n for n in before if n.startswith("ladder_")}


@pytest.mark.parametrize("page", sorted(docs_sync.DOC_TABLES))
def test_docs_tables_are_rendered_from_the_committed_results(page):
    """Each docs/ page's generated block is exactly what `--update-docs` renders from the standard results."""
    (results_file,) = [p for p in COMMITTED if p.name == "practical_standard.json"]
    text = (ROOT / page).read_text()
    assert docs_sync.DOC_BEGIN in text, f"{page} has no generated block"
    block = docs_sync.DOC_BEGIN + text.split(docs_sync.DOC_BEGIN, 1)[1].split(docs_sync.DOC_END, 1)[0] + docs_sync.DOC_END
    results = json.loads(results_file.read_text())
    assert block == docs_sync.doc_tables(results, docs_sync.DOC_TABLES[page]), (
        f"{page} disagrees with {results_file.name}: run python -m experiments.report --update-docs "
        f"{results_file.relative_to(ROOT)}")
    for name in docs_sync.DOC_TABLES[page]:  # every table the page names is in the results, rows and all
        assert results["tables"][name]["rows"] and f"| {results['tables'][name]['rows'][0][0]} |" in block


def test_update_docs_reports_what_it_changed(tmp_path):
    (tmp_path / "docs").mkdir()
    for path in ["README.md", *docs_sync.DOC_TABLES]:
        shutil.copy(ROOT / path, tmp_path / path)
    results_file = ROOT / "results" / "practical_standard.json"
    assert docs_sync.update_docs(results_file, tmp_path) == []  # the committed docs agree
    page = tmp_path / "docs" / "parity.md"
    page.write_text(page.read_text().replace("pass |", "PASS |", 1))  # a hand edit inside the block
    assert docs_sync.update_docs(results_file, tmp_path) == [page]
    assert page.read_text() == (ROOT / "docs" / "parity.md").read_text()


def test_the_discussion_compares_the_two_frameworks_ladders_step_by_step(tmp_path):
    """Where a dataset's ladder ran in both frameworks, the discussion counts the steps whose keep-or-leave
    decisions agree and names each one that differs, with both decisions, from the ladder tables."""
    from experiments import discussion, sections

    def rows(*decisions):
        steps = ["00_base", "01_batch_norm", "02_depth_width", "03_augmentation"]
        changes = ["specified CNN", "+ BatchNorm: after every conv", "+ depth/width: more", "+ augmentation: shifts"]
        return [{"step": s, "change": c, "decision": d, "seeds": "1"} for s, c, d in zip(steps, changes, ("first", *decisions))]

    records = [{"kind": "ladder", "meta": {"dataset": "mnist", "framework": fw}, "command": f"ladder {fw}", "configs": []}
               for fw in ("lightning", "keras")]
    ctx = sections.Context(records, "standard", tmp_path, "practical")
    ctx.ladders = {("mnist", "lightning"): rows("within noise", "kept", "worse"),
                   ("mnist", "keras"): rows("kept", "kept", "within noise")}
    discussion.ladders_across_frameworks(ctx)
    (text,) = ctx.claims
    assert "agree on 2 of 3 steps" in text
    assert "“+ BatchNorm” (01_batch_norm: within noise in Lightning, kept in Keras)" in text
    assert "02_depth_width" not in text and "03_augmentation" not in text  # agreeing steps are counted, not listed
    assert not unregistered({"numbers": ctx.numbers.entries, "discussion": ctx.claims})
    ctx.claims.clear()
    ctx.ladders[("mnist", "keras")] = rows("within noise", "kept", "worse")
    discussion.ladders_across_frameworks(ctx)
    assert "agree on 3 of 3 steps" in ctx.claims[0] and "They differ" not in ctx.claims[0]
    ctx.claims.clear()
    for fw in ("lightning", "keras"):  # three seeds a step: the noise is named as theirs, not one run's
        ctx.ladders[("mnist", fw)][0]["seeds"] = "3"
    ctx.ladders[("mnist", "keras")][1]["decision"] = "kept"
    ctx.numbers.add("ladder_mnist_lightning_seeds", 3, "3", records[0])
    discussion.ladders_across_frameworks(ctx)
    assert "the noise of 3 seeds' runs per step" in ctx.claims[0] and "one run" not in ctx.claims[0]
    ctx.claims.clear()
    del ctx.ladders[("mnist", "keras")]  # one framework's ladder alone: nothing to compare
    discussion.ladders_across_frameworks(ctx)
    assert not ctx.claims


@pytest.mark.parametrize("cifar_seeds", [3, 1])
def test_the_improved_recipe_is_paired_seed_by_seed_with_the_specified_cnn(tmp_path, cifar_seeds):
    """The shipped improved recipe's section: each seed's run against the specified CNN of the same seed and framework
    on the same test images (McNemar pooled over seeds), the frameworks against each other, and prose, headline row
    and conclusion that state only registered numbers. CIFAR-10's final recipe over the full budget's three seeds, and
    over the standard budget's one (its section, conclusion and headline say one seed, no spread)."""
    from experiments import discussion, sections

    def run(kind: str, fw: str, seed: int, acc: float, errors: list[int], dataset: str = "mnist",
            recipe: str = "mnist_improved.yaml") -> tuple[dict, dict]:
        out = tmp_path / f"{kind}_{dataset}_{fw}_{seed}"
        out.mkdir()
        metrics = {"test_acc": acc, "train_s": 100.0 + seed, "parameters": 135_276, "epochs": 8, "test_errors": errors}
        (out / "metrics.json").write_text(json.dumps(metrics))
        flag = "--seed_everything" if fw == "lightning" else "--seed"
        record = {"kind": kind, "output": str(out), "configs": [recipe], "wall_s": 1.0,
                  "command": f"python -m {fw} --config configs/{recipe} {flag} {seed}",
                  "meta": {"dataset": dataset, "framework": fw, "seed": seed, "seed_flag": flag}}
        return record, metrics

    specified, records = {}, []
    for fw in ("lightning", "keras"):
        base = [run("specified", fw, s, 0.9920, list(range(80))) for s in range(3)]
        specified[fw] = {"values": [m["test_acc"] for _, m in base], "record": base[0][0],
                         "runs": [m for _, m in base], "items": [r for r, _ in base]}
        # Lightning's improved runs get 40 more images right than the specified CNN, every seed: beyond noise;
        # Keras' get 2 more right and 1 more wrong: within noise.
        errors = list(range(40)) if fw == "lightning" else [*range(78), 500]
        records += [run("improved", fw, s, 1 - len(errors) / 10_000 + s * 1e-4, errors)[0] for s in range(3)]
    # CIFAR-10's final recipe is a named one (budgets.yaml: [cifar10, lightning, cifar10_whitened]), and no specified
    # CNN of that dataset exists to pair it with
    records += [run("improved", "lightning", s, 0.917 + s * 1e-3, list(range(830 - s * 10)), "cifar10",
                    "cifar10_whitened.yaml")[0] for s in range(cifar_seeds)]
    cifar_mean = "91.80 ± 0.10 %" if cifar_seeds == 3 else "91.70 %"
    ctx = sections.Context(records, "standard", tmp_path / "report", "practical")
    ctx.figures.mkdir(parents=True)
    for fw in ("lightning", "keras"):
        ctx.numbers.add(f"specified_{fw}_test_acc_mean", 0.992, "99.20 %", specified[fw]["record"])
    found = sections.section_improved(ctx, specified)
    assert set(found) == {("mnist", "lightning"), ("mnist", "keras"), ("cifar10", "lightning")}
    cifar = ctx.tables["improved_cifar10"]
    assert [r[0] for r in cifar["rows"]] == ["Lightning"] and cifar["rows"][0][-3:] == ["—", "—", "—"]
    assert "configs/cifar10_whitened.yaml" in cifar["command"] and "not trained on this dataset" in cifar["caption"]
    cifar_claim = ctx.claims.pop()  # the CIFAR-10 section's own: the recipe's mean, nothing paired
    assert f"reaches {cifar_mean}" in cifar_claim and "McNemar" not in cifar_claim
    cifar_text = next(b.text for b in ctx.doc.blocks if isinstance(b, Para) and "configs/cifar10_whitened" in b.text)
    assert ("over the same seeds as the specified CNN" in cifar_text) == (cifar_seeds == 3)
    assert ("over 1 seed (seed 0: a run costs too much at this budget" in cifar_text) == (cifar_seeds == 1)
    table = ctx.tables["improved_mnist"]
    rows = {r[0]: dict(zip(table["header"], r)) for r in table["rows"]}
    paired = "right only improved / only specified (test, summed over seeds)"
    assert rows["Lightning"][paired] == "120 / 0" and rows["Keras"][paired] == "6 / 3"
    assert float(rows["Lightning"]["McNemar p"]) < 1e-30 and float(rows["Keras"]["McNemar p"]) > 0.05
    assert rows["Lightning"]["test accuracy per seed"] == "99.60 %, 99.61 %, 99.62 %"
    (text,) = ctx.claims
    lightning_part, keras_part = text.split("; in Keras", 1)
    assert "an improvement beyond noise" in lightning_part and "within noise" in keras_part
    assert "Lightning against Keras" in text
    assert (ctx.figures / "improved_mnist_seeds.png").is_file()
    assert (ctx.figures / "improved_cifar10_seeds.png").is_file() == (cifar_seeds > 1)  # one cross: no figure
    discussion.conclusion(ctx)
    conclusion = ctx.claims[-1]
    assert "configs/mnist_improved.yaml" in conclusion
    assert re.search(r"ahead of the specified CNN beyond noise \(McNemar's p [^)]* in Lightning\) and within noise of "
                     r"the specified CNN \(McNemar's p [^)]* in Keras\)", conclusion), conclusion
    assert not unregistered({"numbers": ctx.numbers.entries, "discussion": ctx.claims})
    said = f"the shipped CIFAR-10 recipe (configs/cifar10_whitened.yaml) reaches {cifar_mean} in Lightning"
    assert said in conclusion and (said + " (one seed)" in conclusion) == (cifar_seeds == 1)
    row, cifar_row = [r for r in docs_sync.headline_rows(ctx.numbers.entries) if r[0].startswith("improved CNN (")]
    assert cifar_row[0].startswith("improved CNN (configs/cifar10_whitened.yaml), test accuracy over "
                                   + ("3 seeds" if cifar_seeds == 3 else "1 seed,")) and cifar_row[1] == cifar_mean
    assert row[1] == f"{ctx.numbers.text('improved_mnist_lightning_test_acc_mean')} / " \
                     f"{ctx.numbers.text('improved_mnist_keras_test_acc_mean')}" and "3 seeds" in row[0]


def test_a_ladder_that_reused_its_finished_runs_is_timed_by_its_runs(tmp_path):
    """A ladder going on in its folder (--resume) runs only what is missing: the report's wall time per part is
    what the part costs from scratch, the sum of its runs' own times, not the seconds of the call that reused them."""
    from experiments.practical import Part, cost

    (tmp_path / "results.json").write_text(json.dumps([{"step": "00_base", "wall_s": 100.0},
                                                       {"step": "01_batch_norm", "wall_s": 50.0}]))
    ladder = Part("ladder_mnist_lightning", "ladder", "ladder", ["experiments.ablation"])
    assert cost(ladder, str(tmp_path), 3.0) == 150.0
    assert cost(ladder, str(tmp_path), 200.0) == 200.0  # a fresh ladder: the call itself, its overhead included
    assert cost(Part("baseline", "baseline", "HOG", ["parity.baseline"]), str(tmp_path), 3.0) == 3.0


def test_the_discussion_names_the_most_frequent_confusions(tmp_path):
    """From the runs' test confusion matrices, summed over seeds: the errors, the most frequent (true, predicted)
    pairs with their counts, their share and the weakest class; a pair confused both ways is named as such; the
    improved network says which of the specified CNN's top confusions remain. Every number has a source."""
    from experiments import discussion, sections

    def matrix(**wrong):  # "4_9": 6 -> six true 4s read as 9; 100 test images a class
        cm = [[100 if t == p else 0 for p in range(10)] for t in range(10)]
        for pair, count in wrong.items():
            t, p = map(int, pair[1:].split("_"))
            cm[t][p] += count
            cm[t][t] -= count
        return cm

    record = {"kind": "improved", "command": "python -m lightning_impl.train", "configs": []}
    ctx = sections.Context([record], "standard", tmp_path, "practical")
    runs = [{"confusion_matrix": matrix(_4_9=6, _9_4=2, _7_2=3, _3_5=1)},
            {"confusion_matrix": matrix(_4_9=4, _9_4=3, _7_2=1, _3_5=1)}]
    text, pairs = discussion.confusions(ctx, "t", "The net", [r["confusion_matrix"] for r in runs],
                                        [str(d) for d in range(10)], record)
    assert pairs == [("4", "9"), ("9", "4"), ("7", "2")]
    assert "makes 21 test errors, summed over its 2 runs" in text
    assert "a true “4” as “9” (10), a true “9” as “4” (5), a true “7” as “2” (4), together 90 % of its errors" in text
    assert "its weakest class is “4”, 95.00 % of whose test images it gets right" in text
    assert discussion.confusions(ctx, "u", "x", [None], "0123456789", record) == ("", [])  # an older run: no matrix

    specified = {"lightning": {"runs": [{"confusion_matrix": matrix(_4_9=9, _8_3=8, _5_3=7)}]}}
    found = {("mnist", "lightning"): {"runs": runs, "record": record}}
    discussion.improved_confusions(ctx, "mnist", found, specified)
    (said,) = ctx.claims
    assert "both ways between “4” and “9”" in said
    assert "Of the specified CNN's most frequent confusions, “4” as “9” remains among" in said
    assert not unregistered({"numbers": ctx.numbers.entries, "discussion": ctx.claims})


def test_the_ladder_says_whether_it_starts_where_the_specified_cnn_stands(tmp_path):
    """The ladder's first step is the specified CNN: trained on the same images for the same epochs (the standard
    budget) it is compared with the specified section's run of the same seed by McNemar on the test images; where the
    budget cuts its data (smoke) the report says it starts below. Every number has a source."""
    from experiments import discussion, sections

    record = {"kind": "ladder", "command": "python -m experiments.ablation", "configs": [],
              "meta": {"dataset": "mnist", "framework": "lightning"}}
    ctx = sections.Context([record], "standard", tmp_path, "practical")

    def run(acc, wrong, images=54000, epochs=5):
        return {"seed": 0, "test_acc": acc, "epochs": epochs, "test_errors": wrong,
                "train_images_per_s": [images / 10.0] * epochs, "epoch_time_s": [10.0] * epochs}

    specified = {"runs": [run(0.9935, list(range(65)))], "items": [{"meta": {"seed": 0}}]}
    discussion.ladder_start(ctx, "mnist", "lightning", run(0.9933, list(range(2, 69))), specified)
    (said,) = ctx.claims
    assert "trained for 5 epochs on 54,000 training images each (seed 0): 99.33 % test, against 99.35 %" in said
    assert "2 are right only in the ladder's run and 4 only in the specified section's" in said
    assert "within noise, so the ladder starts where the exercise's network stands" in said
    assert not unregistered({"numbers": ctx.numbers.entries, "discussion": ctx.claims})
    ctx = sections.Context([record], "smoke", tmp_path, "practical")
    discussion.ladder_start(ctx, "mnist", "lightning", run(0.9812, list(range(188)), images=1080, epochs=1), specified)
    (said,) = ctx.claims
    assert "starts below the network it improves" in said and "McNemar" not in said
    assert not unregistered({"numbers": ctx.numbers.entries, "discussion": ctx.claims})
    discussion.ladder_start(ctx, "mnist", "lightning", run(0.99, [], images=1080), {"runs": [], "items": []})
    assert len(ctx.claims) == 1  # no specified run of that seed: nothing to say


def test_a_ladder_that_keeps_little_beside_a_recipe_ahead_beyond_noise_is_explained(tmp_path):
    """MNIST saturates: a ladder keeping none of its changes while the shipped recipe is ahead of the specified CNN
    beyond noise gets a paragraph that says why both hold, from registered numbers only; nothing is said where the
    recipe is not ahead, or where the ladder kept every change."""
    from experiments import discussion, sections

    record = {"kind": "ladder", "command": "python -m experiments.ablation", "configs": []}
    ctx = sections.Context([record], "standard", tmp_path, "practical")
    ctx.ladders = {("mnist", "lightning"): [{"step": "00_base"}], ("cifar10", "lightning"): [{"step": "00_base"}]}
    n = ctx.numbers
    for key, value, text in (("ladder_mnist_lightning_kept", 0, "0"), ("ladder_mnist_lightning_tried", 7, "7"),
                             ("ladder_mnist_lightning_val_images", 6000, "6,000"),
                             ("ladder_mnist_lightning_00_base_val_acc", 0.9936, "99.36"),
                             ("ladder_cifar10_lightning_00_base_val_acc", 0.5046, "50.46"),
                             ("improved_mnist_lightning_vs_specified_p", 5.8e-08, "5.8e-08"),
                             ("improved_mnist_lightning_vs_specified_only_improved", 127, "127"),
                             ("improved_mnist_lightning_vs_specified_only_specified", 54, "54"),
                             ("improved_mnist_lightning_seeds", 3, "3")):
        n.add(key, value, text, record)
    discussion.saturation(ctx)
    (said,) = ctx.claims
    assert "kept 0 of its 7 changes, yet the shipped recipe" in said and "127 to 54 test image-runs" in said
    assert "gets 99.36 % of the 6,000 validation images right" in said and "only 50.46 %" in said
    assert not unregistered({"numbers": n.entries, "discussion": ctx.claims})
    n.add("improved_mnist_lightning_vs_specified_p", 0.3, "0.3", record)  # the recipe within noise: nothing to explain
    discussion.saturation(ctx)
    n.add("improved_mnist_lightning_vs_specified_p", 5.8e-08, "5.8e-08", record)
    n.add("ladder_mnist_lightning_kept", 7, "7", record)  # every change kept: no disagreement
    discussion.saturation(ctx)
    assert len(ctx.claims) == 1


@pytest.mark.parametrize("jobs", [1, 2, None])
def test_a_call_that_runs_every_part_records_its_elapsed_time(tmp_path, monkeypatch, jobs):
    """The budget's cost is the elapsed time of the call that ran all its parts (with --jobs less than the sum of the
    parts' times): recorded by run_all, stated by the overview only for exactly those parts, never by a call that
    reused some of them. No --jobs: the budget's own jobs, at most one part a CPU core."""
    import os

    from core import budgets
    from experiments import practical, sections

    if jobs is None:
        assert practical.parse_args(["--budget", "smoke"]).jobs is None
    expected = jobs or min(budgets.budget("practical", "smoke")["jobs"], os.cpu_count() or 1)

    out = tmp_path / "out.txt"
    out.write_text("")
    todo = [practical.Part(f"p{i}", "parity", f"part {i}", ["this"], output_file=str(out)) for i in range(3)]
    monkeypatch.setattr(practical, "parts", lambda budget, runs, seeds=None: todo)
    records = practical.run_all("smoke", tmp_path / "runs", quiet=True, jobs=jobs)
    home = tmp_path / "runs" / "practical" / "smoke"
    sitting = practical.last_sitting(home, records)
    assert sitting["jobs"] == expected and 0 < sitting["elapsed_s"] <= sum(r["command_s"] for r in records) + 5
    ctx = sections.Context(records, "smoke", tmp_path / "report", "practical")
    sections.section_overview(ctx, {"date": "today"}, sitting)
    assert f"in one call, {expected} part{'s' if expected > 1 else ''} at a time, in " in ctx.doc.blocks[0].text
    assert ctx.numbers.value("elapsed_s") == sitting["elapsed_s"]

    (home / "parts" / "p1.json").unlink()  # a later call runs one part again: the recorded call still stands
    again = practical.run_all("smoke", tmp_path / "runs", quiet=True, jobs=jobs)
    assert practical.last_sitting(home, again) == sitting
    assert practical.last_sitting(home, again[:2]) is None  # other parts than the call ran: no elapsed time stated


def test_the_progress_line_counts_down_the_elapsed_time_of_parts_run_side_by_side(tmp_path, capsys):
    """With two parts at a time, what is left is the parts' estimates (each slower beside another: SHARED_PACE until
    finished parts tell the real pace) shared over the two; the lines name the parts in the order they start."""
    from experiments import practical

    todo = practical.parts("standard", tmp_path / "runs")
    alone, side = (practical.Progress("standard", todo, False, jobs=j) for j in (1, 2))
    assert side.remaining() == pytest.approx(alone.remaining() * practical.SHARED_PACE / 2)
    side.begin(todo[-1])
    side.begin(todo[0])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ", 1)[1].split(" ", 1)[0] for line in lines] == [f"1/{len(todo)}", f"2/{len(todo)}"]
    side.done(todo[0], 2 * practical.estimate("standard", todo[0]))  # a part took twice its estimate: pace 2
    assert side.remaining() == pytest.approx(sum(side.left.values()) * 2 / 2)
