"""The report's sections, each written from the finished parts' output files: every figure goes through
``Numbers.add`` (experiments.numbers), which is what puts it in results.json beside its command."""

from __future__ import annotations

import shlex
import shutil
import statistics
from pathlib import Path

from core import configs, plots
from core.datasets import SPECS
from core.paired import mcnemar
from experiments import ablation, discussion, methods, notebook
from experiments.document import Cell, Document, Figure, Heading, Para, Table, link
from experiments.nets import architecture_table, build_pair, recipe_net
from experiments.numbers import Numbers, duration, mean_std, p_text, pct, pct_mean_std, plural
from experiments.records import read_csv, read_json


def copy_figure(source: Path, figures: Path, name: str) -> Path | None:
    if not Path(source).is_file():
        return None
    target = figures / name
    shutil.copyfile(source, target)
    return target


class Context:
    def __init__(self, records: list[dict], budget: str, out: Path, command: str) -> None:
        self.records, self.budget, self.out, self.command = records, budget, out, command
        self.figures = out / "figures"
        self.numbers = Numbers()
        self.claims: list[str] = []  # the discussion's paragraphs, as written into results.json
        self.tables: dict[str, dict] = {}  # named tables, kept in results.json for the docs (DOC_TABLES)
        self.ladders: dict[tuple[str, str], list[dict]] = {}  # (dataset, framework): its ladder.csv rows
        self.doc = Document(f"The deep-learning practical: report ({budget} budget)")

    def table(self, name: str, table: Table, command: str) -> Table:
        """A table of the report that docs/ pages also show: kept in results.json with the command behind it."""
        self.tables[name] = {"header": table.header, "rows": table.rows, "caption": table.caption,
                             "align": table.align, "command": command}
        return table

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


def section_overview(ctx: Context, env: dict, sitting: dict | None = None) -> None:
    total = sum(r["wall_s"] for r in ctx.records)
    elapsed = ""
    if sitting:  # one call ran every part: its start-to-end time is what the budget costs (--jobs overlaps parts)
        text, ran = duration(sitting["elapsed_s"]), {"command": sitting.get("command", ctx.command)}
        ctx.numbers.add("elapsed_s", sitting["elapsed_s"], text, ran)
        ctx.numbers.add("elapsed_jobs", sitting["jobs"], str(sitting["jobs"]), ran)
        elapsed = (f"; all of them ran in one call, {plural(sitting['jobs'], 'part')} at a time, in {text} from start "
                   f"to end")
    ctx.doc.add(Para(
        f"Generated {env['date']} by `{ctx.command}` from {len(ctx.records)} finished parts "
        f"(their own wall time: {ctx.numbers.add('total_part_s', total, duration(total), {'command': ctx.command})}"
        f"{elapsed}). Every number below "
        "is in results.json beside the command and the configs that produced it; the figures come from the runs "
        "themselves. Each part is one command of the project and can be re-run alone."))
    if any(r.get("jobs", 1) > 1 for r in ctx.records):
        ctx.doc.add(Para("Some parts ran side by side (`--jobs`), sharing the CPU: their wall times overlap, and each "
                         "is longer than the same part run alone, so their sum is more than the time the practical "
                         "took."))
    if ctx.budget == "smoke":
        ctx.doc.add(Para("**The smoke budget checks that every part runs and the report builds.** Its networks see a "
                         "small share of one epoch, so their accuracies say nothing about the methods; "
                         "`--budget standard` trains the recipes themselves."))


def section_environment(ctx: Context, env: dict) -> None:
    """The machine, the packages, and every part with its command and time (an appendix: for reproducing it)."""
    ctx.doc.add(Heading("Appendix: environment, parts and their commands"))
    rows = [["CPU", f"{env['cpu']} ({env['cpu_cores']} cores, torch threads {env['torch_threads']})"],
            ["GPU", ", ".join(env["gpu"]) or "none"], ["Python", env["python"]], ["platform", env["platform"]],
            ["Keras backend", env["keras_backend"]]]
    rows += [[name, version] for name, version in env["packages"].items()]
    ctx.doc.add(Table(["what", "version / value"], rows, align="ll"))
    ctx.doc.add(Heading("Parts and their commands", 3),
                Table(["part", "command", "wall time"],
                      [[r["title"], f"`{r['command']}`", duration(r["wall_s"])] for r in ctx.records], align="llr"))


def over_seeds(records: list[dict]) -> dict:
    """One record standing for the same command run over several seeds: the seed written S, the seeds listed. The
    seed and the flag that sets it are the records' own data (``meta``), never read back out of the command."""
    seeds = [r["meta"]["seed"] for r in records]
    if len(seeds) == 1:
        return records[0]
    argv = shlex.split(records[0]["command"])
    where = argv.index(records[0]["meta"]["seed_flag"]) + 1
    command = shlex.join(argv[:where] + ["S"] + argv[where + 1:])
    return {**records[0], "command": f"{command}  (S = {', '.join(map(str, seeds))})"}


def section_specified(ctx: Context) -> dict:
    runs = ctx.of_kind("specified")
    by_fw: dict[str, list[tuple[dict, dict]]] = {}
    for r in runs:
        by_fw.setdefault(r["meta"]["framework"], []).append((r, read_json(Path(r["output"]) / "metrics.json")))
    ctx.doc.add(Heading("Specified CNN on MNIST"))
    torch_net, keras_net = build_pair(recipe_net("mnist_specified_cnn.yaml"), (1, 28, 28))
    ctx.doc.add(Para("The network the exercise gives, built from its recipe in both frameworks as the trainers build "
                     "it (configs/mnist_specified_cnn.yaml; lightning_impl/models/specified_cnn.py and its Keras twin):"),
                Cell('cells.summarise("mnist_specified_cnn.yaml", (1, 28, 28))'),
                Para("The architecture, read layer by layer from the live models of both frameworks (a batch of "
                     "zeros through each; shapes without the batch axis):"),
                architecture_table(torch_net, keras_net, (1, 28, 28)))
    rows, accs, summary = [], {}, {}
    for fw, items in by_fw.items():
        label = {"lightning": "Lightning", "keras": "Keras"}[fw]
        values = [m["test_acc"] for _, m in items]
        accs[label] = values
        n = ctx.numbers
        mean, std = mean_std(values)
        n.add(f"specified_{fw}_test_acc_mean", mean, pct_mean_std(values), over_seeds([r for r, _ in items]))
        if std == std:
            n.add(f"specified_{fw}_test_acc_std", std, f"{100 * std:.2f}", items[0][0])
        n.add(f"specified_{fw}_seeds", len(values), str(len(values)), items[0][0])
        train = statistics.fmean(m["train_s"] for _, m in items)
        n.add(f"specified_{fw}_train_s", train, duration(train), over_seeds([r for r, _ in items]))
        test_s = [m["test_s"] for _, m in items if "test_s" in m]
        if test_s:
            n.add(f"specified_{fw}_test_s", statistics.fmean(test_s), duration(statistics.fmean(test_s)), items[0][0])
        n.add(f"specified_{fw}_parameters", items[0][1]["parameters"], f"{items[0][1]['parameters']:,}", items[0][0])
        n.add(f"specified_{fw}_epochs", items[0][1]["epochs"], str(items[0][1]["epochs"]), items[0][0])
        per_epoch = discussion.images_per_epoch(items[0][1])
        n.add(f"specified_{fw}_images_per_epoch", per_epoch, f"{per_epoch:,}", items[0][0])
        summary[fw] = {"values": values, "record": items[0][0], "metrics": items[0][1], "runs": [m for _, m in items],
                       "items": [r for r, _ in items]}
        rows.append([label, str(len(values)), ", ".join(pct(v) for v in values), n.text(f"specified_{fw}_test_acc_mean"),
                     n.text(f"specified_{fw}_epochs"), n.text(f"specified_{fw}_train_s"),
                     n.text(f"specified_{fw}_test_s") if test_s else "—"])
    ctx.doc.add(ctx.table("specified_seeds", Table(
        ["framework", "seeds", "test accuracy per seed", "mean ± std", "epochs", "training time (mean)",
         "test-set prediction time"], rows, caption="The checkpoint with the best validation accuracy of each run, tested once."),
        "; ".join(over_seeds([r for r, _ in items])["command"] for items in by_fw.values())))
    ctx.doc.add(Figure(plots.seeds_per_group(accs, ctx.figures / "specified_seeds.png", "specified CNN: test accuracy per seed"),
                       "Test accuracy per seed (crosses) and mean ± std over seeds."))
    tables = {}
    for fw, items in by_fw.items():
        run = Path(items[0][0]["output"])
        tables["Lightning" if fw == "lightning" else "Keras"] = plots.epoch_table(run / "metrics.csv")
    curves = plots.learning_curves(tables, ctx.figures / "specified_learning_curves.png",
                                   "specified CNN: both frameworks, first seed")
    ctx.doc.add(Figure(curves, "Learning curves of both frameworks (first seed): loss and accuracy per epoch, training vs validation."))
    first = Path(by_fw["lightning"][0][0]["output"]) / "figures"
    for name, caption in (("confusion_matrix.png", "Confusion matrix on the test set (Lightning, first seed)."),
                          ("misclassified.png", "The test digits it got wrong with the highest confidence (Lightning, first seed).")):
        copied = copy_figure(first / name, ctx.figures, f"specified_{name}")
        if copied:
            ctx.doc.add(Figure(copied, caption))
    return summary


def section_baseline(ctx: Context, specified: dict) -> None:
    (record,) = ctx.of_kind("baseline")
    m = read_json(Path(record["output"]) / "metrics.json")
    n = ctx.numbers
    ctx.doc.add(Heading("HOG + SVM against the CNN"))
    n.add("baseline_test_acc", m["test_acc"], pct(m["test_acc"]), record)
    n.add("baseline_fit_s", m["fit_time_s"], duration(m["fit_time_s"]), record)
    n.add("baseline_predict_s", m["predict_time_s"], duration(m["predict_time_s"]), record)
    n.add("baseline_features", m["feature_length"], f"{m['feature_length']:,}", record)
    n.add("baseline_n_fit", m["n_fit"], f"{m['n_fit']:,}", record)
    n.add("baseline_support_vectors", m["n_support_vectors"], f"{m['n_support_vectors']:,}", record)
    rows = [["HOG + SVM (RBF)", n.text("baseline_test_acc"), n.text("baseline_fit_s"), n.text("baseline_predict_s"),
             f"{n.text('baseline_features')} HOG features, {n.text('baseline_support_vectors')} support vectors",
             n.text("baseline_n_fit")]]
    cnn = specified.get("lightning")
    if cnn:
        rows.append(["specified CNN (Lightning, mean over seeds)", n.text("specified_lightning_test_acc_mean"),
                     n.text("specified_lightning_train_s"),
                     n.text("specified_lightning_test_s") if "specified_lightning_test_s" in n.entries else "—",
                     f"{n.text('specified_lightning_parameters')} parameters",
                     f"{n.text('specified_lightning_images_per_epoch')} × {n.text('specified_lightning_epochs')} epochs"])
    ctx.doc.add(Para("The classical baseline: histogram-of-oriented-gradient features of each deskewed digit, scaled, "
                     "into an RBF-kernel SVM (scikit-learn pipeline; parameters chosen on the validation split, "
                     "parity/baseline.py). Time to train and to predict the 10,000 test images on this machine:"),
                ctx.table("baseline_vs_cnn", Table(["method", "test accuracy", "training time", "test-set prediction time",
                                                    "size", "training images"], rows),
                          record["command"] + (f"; {n.entries['specified_lightning_train_s']['command']}" if cnn else "")))
    ctx.doc.add(Figure(hog_figure(ctx.figures / "hog_features.png"), "What the SVM sees: HOG features of four test digits."))
    first = (cnn or {}).get("runs", [{}])[0]
    if "test_errors" in m and "test_errors" in first:
        # Both read the test set in its own order, so their errors are positions of the same images: a paired test.
        test = mcnemar([m["test_errors"]], [first["test_errors"]], m["n_test"])
        n.add("baseline_only_cnn", test.new_only, f"{test.new_only:,}", cnn["record"])
        n.add("baseline_only_svm", test.old_only, f"{test.old_only:,}", record)
        n.add("baseline_mcnemar_p", test.p, p_text(test.p), record)
        figure = disagreements(m["test_errors"], first["test_errors"], ctx.figures / "baseline_disagreements.png")
        if figure:
            ctx.doc.add(Figure(figure, "Where the two disagree: test digits only HOG + SVM gets right (top) and only the "
                                       "CNN gets right (bottom), first of each. Look at which strokes each one "
                                       "wins on: the SVM sees histograms of gradients on a fixed grid of cells, the "
                                       "CNN filters it learnt itself."))
    copied = copy_figure(Path(record["output"]) / "confusion_matrix.png", ctx.figures, "baseline_confusion_matrix.png")
    if copied:
        ctx.doc.add(Figure(copied, "HOG + SVM confusion matrix on the test set."))


def hog_figure(path: Path) -> Path:
    """Four test digits, deskewed as the baseline deskews them, beside their HOG features (the finest cell size)."""
    from core.datasets import ensure_available, load_split
    from parity.baseline import CHOSEN
    from parity.hog import deskew

    images, labels = load_split("mnist", ensure_available("mnist"), train=False)
    picks = [int((labels == d).nonzero()[0][0]) for d in (0, 3, 7, 8)]
    return plots.hog_features(images[picks, 0].numpy(), [int(labels[k]) for k in picks], CHOSEN["mnist"]["hog"], deskew, path)


def disagreements(svm_errors: list[int], cnn_errors: list[int], path: Path, limit: int = 10) -> Path | None:
    """Test digits only one of the two classifiers gets right, a row each (the first ``limit`` of each)."""
    from core.datasets import ensure_available, load_split

    only_svm = sorted(set(cnn_errors) - set(svm_errors))
    only_cnn = sorted(set(svm_errors) - set(cnn_errors))
    k = min(limit, len(only_svm), len(only_cnn))
    if not k:
        return None
    images, _ = load_split("mnist", ensure_available("mnist"), train=False)
    pick = lambda positions: images[positions[:k], 0].numpy().astype("float32") / 255.0  # noqa: E731
    return plots.image_rows([("only HOG + SVM\nright", pick(only_svm)), ("only the CNN\nright", pick(only_cnn))], path,
                            "test digits on which the two classifiers disagree")


LADDER_HEADER = ["step", "change", "params", "test acc %", "val acc %", "Δ val (pp)", "right only here / in kept (val)",
                 "McNemar p", "decision", "s/epoch"]


def section_ladders(ctx: Context, specified: dict | None = None) -> None:
    ladders = ctx.of_kind("ladder")
    if not ladders:
        return
    ctx.doc.add(Heading("Improved CNN: the ablation ladders"))
    ctx.doc.add(Para("From the specified CNN to the improved recipe one change at a time (configs/ablation/<dataset>/): "
                     "each step trains the steps kept so far plus its own change, and the decision is taken on "
                     f"validation only. The keep rule: {ablation.RULE} Speed-only changes (precision, memory layout) "
                     "are no steps: every step leaves them to the machine. Test accuracy is read for the report only. "
                     "The final architecture below is the kept chain, read from the ladder's own configs."))
    n = ctx.numbers
    chains: dict[str, tuple[Path, list[str]]] = {}  # the Lightning ladders' kept steps: the final architectures
    for record in ladders:
        out = Path(record["output"])
        dataset, fw = record["meta"]["dataset"], record["meta"]["framework"]
        spec = read_json(out / "ladder.json")
        rows = read_csv(out / "ladder.csv")
        ctx.ladders[dataset, fw] = rows
        if fw == "lightning":
            chains[dataset] = (out, [r["step"] for r in rows if ablation.is_kept(r["decision"])])
        ctx.doc.add(Heading(f"{SPECS[dataset].title}, {fw.capitalize()}", 3))
        table = []
        for r in rows:
            tag = f"ladder_{dataset}_{fw}_{r['step']}"
            test, val = float(r["test_acc_mean"]), float(r["val_acc_mean"])
            if test != test:
                table.append([r["step"], r["change"], f"{int(r['parameters']):,}", "—", "—", "", "", "", r["decision"], "—"])
                continue
            ts, vs = float(r["test_acc_std"]), float(r["val_acc_std"])
            n.add(f"{tag}_test_acc", test, f"{100 * test:.2f}" + (f" ± {100 * ts:.2f}" if ts == ts else ""), record)
            n.add(f"{tag}_val_acc", val, f"{100 * val:.2f}" + (f" ± {100 * vs:.2f}" if vs == vs else ""), record)
            delta = float(r["delta_val"])
            if delta == delta:
                n.add(f"{tag}_delta_val", delta, f"{100 * delta:+.2f}", record)
            paired = ablation.paired_cells(r)
            if paired[1]:
                n.add(f"{tag}_right_only_new", float(r["val_right_only_new"]), f"{float(r['val_right_only_new']):.0f}", record)
                n.add(f"{tag}_right_only_kept", float(r["val_right_only_kept"]), f"{float(r['val_right_only_kept']):.0f}", record)
                n.add(f"{tag}_p", float(r["p_value"]), paired[1], record)
                paired = [f"{n.text(tag + '_right_only_new')} / {n.text(tag + '_right_only_kept')}", n.text(f"{tag}_p")]
            n.add(f"{tag}_s_per_epoch", float(r["s_per_epoch"]), f"{float(r['s_per_epoch']):.1f}", record)
            table.append([r["step"], r["change"], f"{int(r['parameters']):,}", n.text(f"{tag}_test_acc"),
                          n.text(f"{tag}_val_acc"), n.text(f"{tag}_delta_val") if delta == delta else "",
                          *paired, r["decision"], n.text(f"{tag}_s_per_epoch")])
        ran = [r for r in rows if ablation.is_kept(r["decision"]) and float(r["test_acc_mean"]) == float(r["test_acc_mean"])]
        for name, r in (("first", ran[0]), ("final", ran[-1])):  # the first step, and the last one kept
            key = f"ladder_{dataset}_{fw}_{r['step']}_test_acc"
            n.add(f"ladder_{dataset}_{fw}_{name}_test_acc", n.value(key), n.text(key), record)
        seeds = int(rows[0]["seeds"])
        epochs = sorted({int(r["epochs"]) for r in rows if int(float(r["seeds"] or 0)) > 0})
        n.add(f"ladder_{dataset}_{fw}_seeds", seeds, str(seeds), record)
        spread = "mean ± std over seeds" if seeds > 1 else "one seed: no spread"
        runs = ablation.ladder_runs(out)
        first = next((m for m in runs if m.get("step") == rows[0]["step"]), None)
        seen = f" on {discussion.images_per_epoch(first):,} training images an epoch" if first and "epoch_time_s" in first else ""
        if first and first.get("val_images"):
            n.add(f"ladder_{dataset}_{fw}_val_images", first["val_images"], f"{first['val_images']:,}", record)
        ctx.doc.add(ctx.table(f"ladder_{dataset}_{fw}", Table(
            LADDER_HEADER, table, align="llrrrrrrlr",
            caption=f"{dataset}, {fw}, budget {spec['budget']}: {plural(seeds, 'seed')}, "
                    + (f"{plural(epochs[0], 'epoch')} per run" if len(epochs) == 1 else
                       f"each step at its recipe's epochs ({', '.join(map(str, epochs))})")
                    + f"{seen}; {spread}; "
                    "right only here / in kept: validation images (summed over seeds) that only this step's runs, or "
                    "only the last kept step's runs, classify correctly"),
            record["command"]))
        png = copy_figure(out / "ladder.png", ctx.figures, f"ladder_{dataset}_{fw}.png")
        if png:
            ctx.doc.add(Figure(png, f"{dataset} ladder ({fw}): validation and test accuracy per step ({spread}) above, "
                                    "seconds per epoch below. The kept chain is joined by a line; a step left out is a "
                                    "hollow marker on a grey band. Look at whether each kept step lifts validation "
                                    "and at what it costs in time."))
        discussion.ladder_start(ctx, dataset, fw, first, (specified or {}).get(fw) if dataset == "mnist" else None)
        discussion.ladder(ctx, dataset, fw, rows)
    for dataset, (out, kept) in chains.items():
        net = final_net(out, kept)
        shape = SPECS[dataset].shape
        torch_net, keras_net = build_pair(net, shape)
        committed = ablation.steps_of((configs.folder() / f"{dataset}_improved.yaml").read_text())
        ctx.doc.add(Heading(f"Final architecture, {SPECS[dataset].title}", 3),
                    Para(f"The chain this ladder kept: {', '.join(kept)}; its merged config is {out.name}/configs/"
                         f"{kept[-1]}.yaml in the runs folder. "
                         + ("The shipped recipe configs/" + dataset + "_improved.yaml holds the same steps."
                            if committed == kept else
                            f"The shipped recipe configs/{dataset}_improved.yaml holds {', '.join(committed)} (its "
                            "header says how they were chosen); this budget's ladder decides on its own runs, so the "
                            "two can differ.")),
                    architecture_table(torch_net, keras_net, shape))


def shipped_architecture(recipe: str, shape: tuple[int, int, int]) -> Table:
    """The architecture table of a shipped recipe's net: what the improved section's figures were trained on."""
    torch_net, keras_net = build_pair(recipe_net(recipe), shape)
    table = architecture_table(torch_net, keras_net, shape)
    if table.rows[-1][3] != table.rows[-1][6]:  # the totals: torch counts every parameter, Keras its trainable ones
        table.caption = ("Parameters: torch counts every parameter, Keras only its trainable weights; the two differ "
                         "by the weights this net freezes (the whitening filters, BatchNorm's scales), which are set, "
                         "not trained.")
    return table


def section_improved(ctx: Context, specified: dict) -> dict:
    """The shipped improved recipes (configs/<dataset>_improved.yaml) trained at their own size over the seeds, in
    each framework; on MNIST each seed paired with the specified CNN of the same seed and framework on the same test
    images. Returns {(dataset, framework): {"values", "record", "runs"}} for the discussion."""
    runs = ctx.of_kind("improved")
    if not runs:
        return {}
    by: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for r in runs:
        by.setdefault((r["meta"]["dataset"], r["meta"]["framework"]), []).append(
            (r, read_json(Path(r["output"]) / "metrics.json")))
    n, found = ctx.numbers, {}
    ctx.doc.add(Heading("Improved CNN: the shipped recipe over seeds"))
    for dataset in dict.fromkeys(d for d, _ in by):
        # the recipe file the parts trained (experiments.practical: configs/<dataset>_improved.yaml unless the budget
        # names another, e.g. configs/cifar10_whitened.yaml): each improved part's record lists it
        recipe = next(r["configs"][0] for r in runs if r["meta"]["dataset"] == dataset)
        text = (configs.folder() / recipe).read_text()
        steps = ablation.steps_of(text) if ablation.STEPS_LINE in text else []  # a ladder's chain, or none
        left_out = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# left out:")]
        twin = ", and its Keras twin" if any(d == dataset and fw == "keras" for d, fw in by) else ""
        if steps:
            made = f"It holds the ladder steps {', '.join(steps)}"
            made += (f" (left out: {'; '.join(left_out)}). " if left_out else ". ")
        else:
            made = ("It is not a chain of the ladder but the exercise's changes (BatchNorm, depth and width, "
                    "augmentation, a schedule) in the layout of the fast GPU recipes; the methods table above says what "
                    "it holds and why. ")
        paired = ("Each seed's run is paired with the specified CNN's run of the same seed and framework on the same "
                  "test images: McNemar's exact test, pooled over the seeds, on the images only one of the two gets "
                  "right; Welch's t-test compares the seeds' means." if dataset == "mnist" else
                  "The specified CNN is an MNIST network, so there is no paired comparison here; the CIFAR-10 "
                  "ladder above measures the exercise's changes one at a time.")
        seeds = sorted({r["meta"]["seed"] for r in runs if r["meta"]["dataset"] == dataset})
        spec_seeds = sorted({r["meta"]["seed"] for s in specified.values() for r in s["items"]})
        over = ("over the same seeds as the specified CNN" if seeds == spec_seeds else
                f"over {plural(len(seeds), 'seed')} (" + ("seed " if len(seeds) == 1 else "seeds ")
                + ", ".join(map(str, seeds))
                + (": a run costs too much at this budget for more, so there is no spread; the full budget trains "
                   "it over all its seeds)" if len(seeds) == 1 else ")"))
        ctx.doc.add(Heading(f"{SPECS[dataset].title}: configs/{recipe}", 3),
                    Para(f"The recipe a user trains (`python -m lightning_impl.train --config configs/{recipe}`{twin}), "
                         f"at its own epochs and on the whole training split, {over}. " + made + paired),
                    Para("The network it trains, read layer by layer from the live models of both frameworks (shapes "
                         "without the batch axis):"),
                    shipped_architecture(recipe, SPECS[dataset].shape))
        rows, groups = [], {}
        for (d, fw), items in by.items():
            if d != dataset:
                continue
            label, tag = fw.capitalize(), f"improved_{dataset}_{fw}"
            values = [m["test_acc"] for _, m in items]
            record = over_seeds([r for r, _ in items])
            n.add(f"{tag}_test_acc_mean", statistics.fmean(values), pct_mean_std(values), record)
            n.add(f"{tag}_seeds", len(values), str(len(values)), record)
            train = statistics.fmean(m["train_s"] for _, m in items)
            n.add(f"{tag}_train_s", train, duration(train), record)
            n.add(f"{tag}_parameters", items[0][1]["parameters"], f"{items[0][1]['parameters']:,}", record)
            n.add(f"{tag}_epochs", items[0][1]["epochs"], str(items[0][1]["epochs"]), record)
            found[dataset, fw] = {"values": values, "record": record, "runs": [m for _, m in items]}
            paired, welch_p = ["—", "—"], "—"
            base = specified.get(fw) if dataset == "mnist" else None
            if base:
                groups[f"{label}\nspecified"] = base["values"]
                by_seed = {r["meta"]["seed"]: m for r, m in zip(base["items"], base["runs"])}
                pairs = [(by_seed[r["meta"]["seed"]], m) for r, m in items
                         if r["meta"]["seed"] in by_seed and "test_errors" in m and "test_errors" in by_seed[r["meta"]["seed"]]]
                if pairs:
                    test = mcnemar([a["test_errors"] for a, _ in pairs], [b["test_errors"] for _, b in pairs],
                                   SPECS[dataset].test_size)
                    n.add(f"{tag}_vs_specified_only_improved", test.new_only, f"{test.new_only:,}", record)
                    n.add(f"{tag}_vs_specified_only_specified", test.old_only, f"{test.old_only:,}", record)
                    n.add(f"{tag}_vs_specified_p", test.p, p_text(test.p), record)
                    n.add(f"{tag}_vs_specified_pairs", len(pairs), str(len(pairs)), record)
                    paired = [f"{n.text(tag + '_vs_specified_only_improved')} / "
                              f"{n.text(tag + '_vs_specified_only_specified')}", n.text(f"{tag}_vs_specified_p")]
                p = discussion.welch(values, base["values"])
                if p == p:
                    welch_p = n.add(f"{tag}_vs_specified_welch_p", p, p_text(p), record)
            groups[f"{label}\nimproved"] = values
            rows.append([label, str(len(values)), ", ".join(pct(v) for v in values), n.text(f"{tag}_test_acc_mean"),
                         n.text(f"{tag}_parameters"), n.text(f"{tag}_epochs"), n.text(f"{tag}_train_s"),
                         *paired, welch_p])
        commands = "; ".join(found[key]["record"]["command"] for key in found if key[0] == dataset)
        ctx.doc.add(ctx.table(f"improved_{dataset}", Table(
            ["framework", "seeds", "test accuracy per seed", "mean ± std", "params", "epochs", "training time (mean)",
             "right only improved / only specified (test, summed over seeds)", "McNemar p", "Welch p (over seeds)"],
            rows, align="lrlrrrrrrr",
            caption="The checkpoint with the best validation accuracy of each run, tested once; "
                    + ("the comparison is with the specified CNN of the same seeds and framework "
                       "(configs/mnist_specified_cnn.yaml)." if dataset == "mnist" else
                       "the comparison columns are empty: the specified CNN is not trained on this dataset.")), commands))
        mnist = dataset == "mnist"
        if max(len(v) for v in groups.values()) > 1:  # one seed a group: a single cross says no more than the table
            ctx.doc.add(Figure(plots.seeds_per_group(groups, ctx.figures / f"improved_{dataset}_seeds.png",
                                                     f"{SPECS[dataset].title}: improved recipe"
                                                     + (" against the specified CNN" if mnist else "")),
                               "Test accuracy per seed (crosses) and mean ± std over seeds"
                               + (", the improved recipe beside the specified CNN of each framework: look at whether the "
                                  "two groups' crosses overlap." if mnist else ": look at how far apart the seeds are.")))
        first = next((items for (d, fw), items in by.items() if d == dataset and fw == "lightning"), None)
        if first:
            folder = Path(first[0][0]["output"]) / "figures"
            things = "digits" if mnist else "images"
            for name, caption in (("confusion_matrix.png", "Confusion matrix of the improved recipe on the test set "
                                   "(Lightning, first seed): " + ("compare it with the specified CNN's above." if mnist
                                                                  else "look at which classes it mixes up.")),
                                  ("misclassified.png", f"The test {things} the improved recipe got wrong with the "
                                   "highest confidence (Lightning, first seed): look at how many a reader would "
                                   "hesitate over too.")):
                copied = copy_figure(folder / name, ctx.figures, f"improved_{dataset}_{name}")
                if copied:
                    ctx.doc.add(Figure(copied, caption))
        discussion.improved(ctx, dataset, found, specified)
        discussion.improved_confusions(ctx, dataset, found, specified)
    return found


def final_net(ladder_dir: Path, kept: list[str]) -> dict:
    """The network of a ladder's kept chain: the merged config the ladder wrote for its last kept step (each step's
    config there is the kept chain so far plus that step)."""
    return configs.load(ladder_dir / "configs" / f"{kept[-1]}.yaml")["model"]["net"]


def section_denoiser(ctx: Context) -> None:
    """The exercise's denoising autoencoder trained by both frameworks on the same recipe."""
    runs = ctx.of_kind("denoiser")
    if not runs:
        return
    n = ctx.numbers
    ctx.doc.add(Heading("Denoising autoencoder in both frameworks"))
    rows, tables = [], {}
    for r in runs:
        fw = r["meta"]["framework"]
        m = read_json(Path(r["output"]) / "metrics.json")
        label = "Lightning" if fw == "lightning" else "Keras"
        n.add(f"denoiser_{fw}_test_psnr", m["test_psnr"], f"{m['test_psnr']:.2f}", r, "dB")
        n.add(f"denoiser_{fw}_test_ssim", m["test_ssim"], f"{m['test_ssim']:.3f}", r)
        n.add(f"denoiser_{fw}_train_s", m["train_s"], duration(m["train_s"]), r)
        n.add(f"denoiser_{fw}_parameters", m["parameters"], f"{m['parameters']:,}", r)
        rows.append([label, n.text(f"denoiser_{fw}_test_psnr"), n.text(f"denoiser_{fw}_test_ssim"),
                     n.text(f"denoiser_{fw}_parameters"), str(m["epochs"]), n.text(f"denoiser_{fw}_train_s")])
        tables[label] = plots.epoch_table(Path(r["output"]) / "metrics.csv")
    sigma = read_json(Path(runs[0]["output"]) / "metrics.json").get("sigma")
    ctx.doc.add(Para(f"configs/denoise_reference.yaml (the exercise's convolutional autoencoder, MSE loss) on "
                     f"Fashion-MNIST with Gaussian noise σ {sigma}, the same recipe read by both trainers; the test "
                     "score is on the fixed noisy test copy. The network in both frameworks:"),
                Cell('cells.summarise("denoise_reference.yaml", (1, 28, 28))'),
                Table(["framework", "test PSNR (dB)", "test SSIM", "parameters", "epochs", "training time"], rows))
    ctx.doc.add(Figure(plots.learning_curves(tables, ctx.figures / "denoiser_learning_curves.png",
                                             "reference denoiser: both frameworks"),
                       "Learning curves (loss per epoch, training vs validation) of both frameworks."))
    lightning = next((r for r in runs if r["meta"]["framework"] == "lightning"), None)
    grid = lightning and copy_figure(Path(lightning["output"]) / "figures" / "denoise_grid.png", ctx.figures,
                                     "denoiser_grid.png")
    if grid:
        ctx.doc.add(Figure(grid, "Test images: clean, noisy, denoised (Lightning)."))


def section_denoise(ctx: Context) -> None:
    (record,) = ctx.of_kind("denoise")
    out = Path(record["output"])
    result = read_json(out / "results.json")
    rows, n = result["rows"], ctx.numbers
    sigmas = sorted({r["sigma"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["sigma"]): r for r in rows}
    ctx.doc.add(Heading("Denoising Fashion-MNIST"))
    n.add("denoise_n_test", rows[0]["n_test"], f"{rows[0]['n_test']:,}", record)
    ctx.doc.add(Para(f"Every method restores the same fixed noisy copies of {n.text('denoise_n_test')} test images "
                     "(Gaussian noise, clipped to [0, 1]) and is scored by one function; classical filters are tuned "
                     "per σ on training images, networks are trained per σ (and one blind model over a range of σ). "
                     f"Budget `{result['budget']}`, each network per noise level: "
                     + "; ".join(f"{t['label']} {plural(t['epochs'], 'epoch')} on {t['train_images']:,} training images"
                                 f" at batch {t['batch_size']}, peak learning rate {t['lr']:g}"
                                 for t in result["networks"].values())
                     + " (the budget's overlays on the recipes: docs/denoise.md says how they were chosen)."))
    table = []
    for m in methods:
        line = [m]
        for s in sigmas:
            r = cell.get((m, s))
            if r is None:
                line.append("—")
                continue
            key = f"denoise_{m}_{s:g}".replace(" ", "_")
            n.add(f"{key}_psnr", r["psnr"], f"{r['psnr']:.2f}", record, "dB")
            n.add(f"{key}_ssim", r["ssim"], f"{r['ssim']:.3f}", record)
            line.append(f"{n.text(key + '_psnr')} / {n.text(key + '_ssim')}")
        table.append(line)
    ctx.doc.add(ctx.table("denoise_study", Table(
        ["method"] + [f"σ = {s:g}" for s in sigmas], table,
        caption=f"PSNR (dB) / SSIM, mean over {n.text('denoise_n_test')} test images, budget {result['budget']}"),
        record["command"]))
    for s in sigmas:
        n.add(f"denoise_sigma_{s:g}", s, f"{s:g}", record)
    curves = copy_figure(out / "metrics_vs_sigma.png", ctx.figures, "denoise_metrics_vs_sigma.png")
    if curves:
        ctx.doc.add(Figure(curves, "PSNR and SSIM against the noise level, every method."))
    for s in sigmas:
        grid = copy_figure(out / f"grid_sigma{s:g}.png", ctx.figures, f"denoise_grid_sigma{s:g}.png")
        if grid:
            ctx.doc.add(Figure(grid, f"σ = {s:g}: clean, noisy, the best classical filter, the reference autoencoder, the U-Net."))
    discussion.denoise(ctx, rows, sigmas, record, result.get("paired", []))
    discussion.denoise_reference(ctx, rows, sigmas, record, result.get("paired", []))


def section_parity(ctx: Context) -> None:
    (record,) = ctx.of_kind("parity")
    payload = read_json(Path(record["output"]))
    ctx.doc.add(Heading("Parity: the two frameworks implement the same models"))
    backends = list(payload["backends"])
    pairs = list(dict.fromkeys(p for b in backends for p in payload["backends"][b]["pairs"]))

    def tally(rows: list[dict]) -> str:
        run = [r for r in rows if r["result"] != "skip"]
        skipped = len(rows) - len(run)
        return f"{sum(r['result'] == 'pass' for r in run)} / {len(run)} pass" + (f", {skipped} not run" if skipped else "")

    ctx.doc.add(Para("Checks 1–4 and 6 of parity/ for the model pairs below (at the standard and full budgets every "
                     "registered pair; the smoke budget runs three), on each Keras backend: "
                     "parameters, per-layer output shapes, outputs with shared weights, training steps, and the "
                     "recipe around the model (initialisation, optimiser, learning rate at every step, steps of "
                     "each framework's own optimiser; not run where Keras does not translate the recipe) "
                     "(docs/parity.md)."),
                ctx.table("parity_summary", Table(
                    ["model pair", *[f"Keras on {b}" for b in backends]],
                    [[p, *[tally(payload["backends"][b]["pairs"].get(p, [])) for b in backends]] for p in pairs],
                    align="l" * (1 + len(backends))), record["command"]))
    checks = passed = 0
    for result in payload["backends"].values():
        for rows in result["pairs"].values():
            checks += sum(r["result"] != "skip" for r in rows)
            passed += sum(r["result"] == "pass" for r in rows)
    ctx.numbers.add("parity_checks", checks, str(checks), record)
    ctx.numbers.add("parity_passed", passed, str(passed), record)
    ctx.numbers.add("parity_backends", len(payload["backends"]), str(len(payload["backends"])), record)
    ctx.doc.add(Para(f"Every check, its value and its bound: {link('the appendix', PARITY_APPENDIX)}."))


PARITY_APPENDIX = "Appendix: every parity check"


def section_parity_checks(ctx: Context) -> None:
    """The parity tables check by check, per pair and backend (an appendix: the body shows the tally)."""
    (record,) = ctx.of_kind("parity")
    payload = read_json(Path(record["output"]))
    ctx.doc.add(Heading(PARITY_APPENDIX))
    for backend, result in payload["backends"].items():
        for pair, rows in result["pairs"].items():
            ctx.doc.add(Heading(f"{pair} (Keras on {backend})", 3))
            ctx.doc.add(Table(["check", "value", "bound", "result"],
                              [[r["check"], r["value"], r["bound"], r["result"]] for r in rows], align="llll"))


def section_methods(ctx: Context) -> None:
    """Data, split, normalisation, seeds and the recipes: what every experiment below shares, and why."""
    mnist, cifar, fashion = SPECS["mnist"], SPECS["cifar10"], SPECS["fashion_mnist"]

    def sizes(spec) -> str:
        return f"{spec.train_size:,} training / {spec.test_size:,} test images"

    ctx.doc.add(
        Heading("Methods"),
        Para(f"**Data.** {mnist.title} ({sizes(mnist)}, 28×28 grey digits) for the specified and improved CNN and the "
             f"HOG + SVM baseline; {cifar.title} ({sizes(cifar)}, 32×32 colour photographs) for the improved CNN where "
             f"MNIST leaves no room to improve; {fashion.title} ({sizes(fashion)}, 28×28 grey clothing) for the "
             "denoisers, corrupted by additive Gaussian noise of standard deviation σ on pixels in [0, 1] and clipped "
             "back into [0, 1]. Every file is read by core.datasets from the published archives."),
        Para("**Split.** One tenth of each training set is held out for validation, stratified by class (scikit-learn's "
             "train_test_split with stratify: every class keeps its share) and seeded by split_seed 0 in every recipe, "
             "apart from the training seed, so that every run of every model is validated and tested on the same "
             "images. Validation chooses everything that is chosen: the checkpoint of each run (the epoch with the "
             "best validation accuracy or PSNR), the ladders' decisions, the SVM's parameters, the classical filters' "
             "parameters. The test set is read once per run, for the chosen checkpoint, and decides nothing."),
        Para("**Normalisation.** Images are standardised per channel with the mean and standard deviation of the "
             "training split alone, computed after the split (core.split): no validation or test pixel leaks into "
             "preprocessing, and validation and test are standardised with the training statistics. The denoisers "
             "work on [0, 1] pixels, where noise and PSNR are defined."),
        Para("**Seeds, and why runs differ.** Each run is seeded (`--seed_everything S` in Lightning, `--seed S` in "
             "Keras) and builds a fresh network from its seed: nothing is carried from one run to the next. The seed "
             "fixes the initial weights, the order of the training images in every epoch (a permutation drawn from "
             "the seed and the epoch, core.order, the same in both frameworks), and the draws of augmentation, "
             "dropout and training noise. Runs of different seeds differ in all of these, and their spread is what "
             "'mean ± std over seeds' measures. Because the split and the test set are fixed, two models can also be "
             "compared image by image (McNemar's test on the images only one of them gets right), which sees "
             "differences the seed spread hides."),
        Para("**Statistics.** Two models scored on the same images are compared by a paired test (McNemar for "
             "classifiers); means over seeds by Welch's t-test. A difference is called real at p < "
             f"{ablation.ALPHA:g} and 'within noise' otherwise; each claim names its p-value."),
        Para("**Recipes.** Every trained model and how it is trained, read from the recipe files the trainers read "
             "(where a recipe has a Keras twin, both frameworks read the same file: the Keras trainer translates it, "
             "and parity check 6 proves the translation):"),
        Table(methods.HEADER, methods.recipe_rows(), align="lllllrrll"),
    )
    ctx.doc.add(Para("**Why each recipe is trained this way.**"),
                *[Para(f"`{recipe}`: {why}") for recipe, why in methods.reasons()])


def section_running(ctx: Context, runs_dir: str, seeds: int, data_dir: str | None) -> None:
    """How to run it: the notebook's two first code cells (the parameters, then every part run or reused)."""
    ctx.doc.add(Heading("Running it"),
                Para(f"The whole practical is one command, `{ctx.command}`; in the notebook (practical.ipynb, beside "
                     "this page) it is the two cells below: the parameters, fixed once, then every part, each one "
                     "command of the project run in a process of its own. A part whose command and configs are "
                     "unchanged since it finished is reused, so re-running takes seconds; an interrupted practical "
                     "goes on where it stopped."),
                notebook.parameters_cell(ctx.budget, runs_dir, seeds, data_dir), notebook.RUN_CELL)
