"""The report's discussion, written from the numbers: every figure a sentence states is one the report registered
(`Numbers.add`), and every comparison names its test and p-value — McNemar's for two models on the same images,
Welch's over seeds — and calls a difference real at p < ALPHA (the ladders' keep rule, experiments.ablation).
Each paragraph is a `Claim`; tests/test_report.py checks every number in every claim against results.json."""

from __future__ import annotations

import statistics
from pathlib import Path

from core.datasets import SPECS
from core.paired import mcnemar
from experiments.ablation import ALPHA, is_kept
from experiments.document import Heading, Para
from experiments.denoising import LABELS, best_classical
from experiments.numbers import p_text, plural
from experiments.records import read_json


class Claim(Para):
    """A paragraph generated from the results (checked number by number against results.json)."""


def quote(name: str) -> str:
    """A config's own words (a ladder step's change), set apart from the numbers the discussion states."""
    return f"“{name}”"


def claim(ctx, text: str) -> None:
    ctx.doc.add(Claim(text))
    ctx.claims.append(text)


def ladder_record(ctx, dataset: str, framework: str) -> dict:
    """The practical's part that ran this dataset's ladder in this framework (its command is every figure's source)."""
    return next(r for r in ctx.records if r["kind"] == "ladder" and r["meta"] == {"dataset": dataset, "framework": framework})


def ladder(ctx, dataset: str, framework: str, rows: list[dict]) -> None:
    """What the ladder decided, step by step, with the paired test behind each decision (experiments.ablation's
    rule): the kept changes, those within noise and those worse beyond noise; and how far test accuracy moved."""
    n, tag = ctx.numbers, f"ladder_{dataset}_{framework}"
    record = ladder_record(ctx, dataset, framework)
    tried = [r for r in rows[1:] if f"{tag}_{r['step']}_p" in n.entries]
    if not tried:
        return

    def step(r: dict) -> str:
        key = f"{tag}_{r['step']}"
        return (f"{quote(r['change'].split(':')[0])} ({r['step']}: {n.text(key + '_delta_val')} pp validation, "
                f"{n.text(key + '_right_only_new')} / {n.text(key + '_right_only_kept')} images, p {n.text(key + '_p')})")

    kept = [r for r in tried if is_kept(r["decision"])]
    noise = [r for r in tried if r["decision"] == "within noise"]
    worse = [r for r in tried if r["decision"] == "worse"]
    n.add(f"{tag}_tried", len(tried), str(len(tried)), record)
    n.add(f"{tag}_kept", len(kept), str(len(kept)), record)
    n.add("ladder_alpha", ALPHA, f"{ALPHA:g}", record)
    text = (f"The {SPECS[dataset].title} ladder ({framework.capitalize()}) kept {n.text(tag + '_kept')} of the "
            f"{n.text(tag + '_tried')} changes it tried. "
            "Each figure below is the change in mean validation accuracy, then the validation images only this "
            "step's runs / only the last kept step's runs classify correctly, and McNemar's p on them. ")
    if kept:
        text += f"Better beyond noise (p < {n.text('ladder_alpha')}), so kept: " + "; ".join(map(step, kept)) + ". "
    if noise:
        text += ("Within noise, so left out (a tie goes to the simpler recipe; a larger budget, with more seeds and "
                 "epochs, may still show a gain): " + "; ".join(map(step, noise)) + ". ")
    if worse:
        text += "Worse beyond noise, so left out: " + "; ".join(map(step, worse)) + ". "
    text += (f"From the first step to the last kept one, test accuracy went from {n.text(tag + '_first_test_acc')} % "
             f"to {n.text(tag + '_final_test_acc')} %." if kept else
             f"No change was kept, so the ladder's final network is its first step ({n.text(tag + '_first_test_acc')} % "
             "test).")
    if int(rows[0]["seeds"]) == 1:
        text += (" With one seed per step the paired test sees which images each run gets right, not how much a run "
                 "moves from seed to seed: a decision near the threshold needs the full budget's seeds.")
    claim(ctx, text)


def images_per_epoch(run: dict) -> int:
    """Training images a run saw per epoch: its measured throughput times each epoch's time, averaged."""
    return round(statistics.fmean(r * t for r, t in zip(run["train_images_per_s"], run["epoch_time_s"])))


def ladder_start(ctx, dataset: str, framework: str, first: dict | None, specified: dict | None) -> None:
    """Does the ladder start where the specified-CNN section stands? Its first step is that network with the default
    recipe; trained on the same images for the same epochs and seed it should score the same (within noise: McNemar
    on the same test images). Where the budget cuts the ladder's data or epochs, say so and by how much."""
    runs = (specified or {}).get("runs", [])
    same_seed = [m for r, m in zip((specified or {}).get("items", []), runs)
                 if first is not None and r["meta"]["seed"] == first.get("seed")]
    if first is None or not same_seed or "epoch_time_s" not in first:
        return
    n, tag, base = ctx.numbers, f"ladder_{dataset}_{framework}_start", same_seed[0]
    record = ladder_record(ctx, dataset, framework)
    seen, own = images_per_epoch(first), images_per_epoch(base)
    n.add(f"{tag}_seed", first["seed"], str(first["seed"]), record)
    n.add(f"{tag}_test_acc", 100 * first["test_acc"], f"{100 * first['test_acc']:.2f}", record)
    n.add(f"{tag}_specified_test_acc", 100 * base["test_acc"], f"{100 * base['test_acc']:.2f}", record)
    n.add(f"{tag}_epochs", first["epochs"], str(first["epochs"]), record)
    n.add(f"{tag}_images", seen, f"{seen:,}", record)
    text = (f"The ladder's first step is the specified CNN with the default recipe, trained for "
            f"{n.text(tag + '_epochs')} epochs on {n.text(tag + '_images')} training images each (seed "
            f"{n.text(tag + '_seed')}): {n.text(tag + '_test_acc')} % test, against "
            f"{n.text(tag + '_specified_test_acc')} % for the same seed in the specified-CNN section. ")
    if first["epochs"] == base["epochs"] and abs(seen - own) <= 0.01 * own:
        if "test_errors" in first and "test_errors" in base:
            test = mcnemar([base["test_errors"]], [first["test_errors"]], SPECS[dataset].test_size)
            n.add(f"{tag}_only_ladder", test.new_only, str(test.new_only), record)
            n.add(f"{tag}_only_specified", test.old_only, str(test.old_only), record)
            n.add(f"{tag}_p", test.p, p_text(test.p), record)
            text += (f"On the same test images {n.text(tag + '_only_ladder')} are right only in the ladder's run and "
                     f"{n.text(tag + '_only_specified')} only in the specified section's, McNemar's p "
                     f"{n.text(tag + '_p')}: "
                     + ("the two runs get the same images right: the ladder starts exactly where the exercise's "
                        "network stands, and every later step is measured from there."
                        if test.new_only == test.old_only == 0 else
                        "within noise, so the ladder starts where the exercise's network stands and every later step "
                        "is measured from there." if test.p >= ALPHA else
                        "a difference beyond noise between two runs of one recipe, which says the runs are not "
                        "reproducible on this machine."))
        else:
            text += "The same recipe on the same images: the ladder starts where the exercise's network stands."
    else:
        n.add(f"{tag}_specified_epochs", base["epochs"], str(base["epochs"]), record)
        n.add(f"{tag}_specified_images", own, f"{own:,}", record)
        text += (f"The specified section trains {n.text(tag + '_specified_epochs')} epochs on "
                 f"{n.text(tag + '_specified_images')} images each; this budget cuts the "
                 "ladder's steps to less, so the ladder starts below the network it improves, and its steps are "
                 "judged at that size.")
    claim(ctx, text)


def saturation(ctx, dataset: str = "mnist", framework: str = "lightning") -> None:
    """Where the ladder kept few of its changes but the shipped recipe, all of them at once, is ahead of the specified
    CNN beyond noise: say why the two verdicts do not contradict each other (a change alone moves fewer validation
    images than one run can resolve; together they move many test image-runs), and what that says about the
    dataset, from the ladder's and the recipe's own numbers."""
    n, tag, shipped = ctx.numbers, f"ladder_{dataset}_{framework}", f"improved_{dataset}_{framework}"
    base = f"{tag}_{ctx.ladders.get((dataset, framework), [{}])[0].get('step', '')}_val_acc"
    needed = (f"{tag}_kept", f"{tag}_tried", f"{tag}_val_images", base, f"{shipped}_vs_specified_p",
              f"{shipped}_vs_specified_only_improved", f"{shipped}_vs_specified_only_specified", f"{shipped}_seeds")
    if not all(k in n.entries for k in needed) or n.value(f"{tag}_kept") == n.value(f"{tag}_tried"):
        return
    if not (n.value(f"{shipped}_vs_specified_p") < ALPHA
            and n.value(f"{shipped}_vs_specified_only_improved") > n.value(f"{shipped}_vs_specified_only_specified")):
        return
    title = SPECS[dataset].title
    ctx.doc.add(Heading(f"{title}: the ladder against the shipped recipe", 3))
    text = (f"The {title} ladder kept {n.text(tag + '_kept')} of its {n.text(tag + '_tried')} changes, yet the shipped "
            f"recipe, which holds several of them, is ahead of the specified CNN beyond noise: "
            f"{n.text(shipped + '_vs_specified_only_improved')} to {n.text(shipped + '_vs_specified_only_specified')} "
            f"test image-runs over {n.text(shipped + '_seeds')} seeds, McNemar's p {n.text(shipped + '_vs_specified_p')}. "
            f"The two verdicts measure different things. The ladder's first step already gets {n.text(base)} % of the "
            f"{n.text(tag + '_val_images')} validation images right, so what one change can still gain is a handful "
            "of images, no more than two runs of the same recipe differ by (the images only one of them gets right, "
            "in the ladder's table), and one run per step cannot tell it from noise. Together the changes cut the "
            "errors by far more than that, on the whole test set, pooled over the seeds. This is the saturation the "
            "exercise anticipates: on this dataset the remaining errors are too few to judge changes one at a time "
            "at this budget")
    other = [d for d, fw in ctx.ladders if d != dataset and fw == framework]
    if other:
        o = other[0]
        first = f"ladder_{o}_{framework}_{ctx.ladders[o, framework][0]['step']}_val_acc"
        if first in n.entries:
            text += (f", which is why the practical also climbs the {SPECS[o].title} ladder, whose first step gets only "
                     f"{n.text(first)} % of its validation images right and where single changes show")
    claim(ctx, text + ".")


def ladders_across_frameworks(ctx) -> None:
    """Where one dataset's ladder ran in both frameworks: the same steps at the same budget, so (the parity suite
    holding) its two sets of decisions are two draws of one experiment, and where they differ the decision is
    within what one run per step can resolve. Step by step, which decisions agree."""
    n = ctx.numbers
    for dataset in dict.fromkeys(d for d, _ in ctx.ladders):
        both = [ctx.ladders.get((dataset, fw)) for fw in ("lightning", "keras")]
        if not all(both):
            continue
        record = ladder_record(ctx, dataset, "keras")
        keras = {r["step"]: r for r in both[1]}
        steps = [(r, keras[r["step"]]) for r in both[0][1:] if r["step"] in keras and r["decision"] and keras[r["step"]]["decision"]]
        if not steps:
            continue
        differ = [(a, b) for a, b in steps if is_kept(a["decision"]) != is_kept(b["decision"])]
        tag = f"ladder_{dataset}"
        n.add(f"{tag}_compared", len(steps), str(len(steps)), record)
        n.add(f"{tag}_agree", len(steps) - len(differ), str(len(steps) - len(differ)), record)
        title = SPECS[dataset].title
        text = (f"The {title} ladder ran in both frameworks, the same steps at the same budget, and their keep-or-leave "
                f"decisions agree on {n.text(tag + '_agree')} of {n.text(tag + '_compared')} steps. ")
        if not differ:
            claim(ctx, text + "Two implementations that the parity suite holds equal, trained from different random "
                              "draws, reach the same recipe: the decisions are not an accident of one run.")
            continue
        text += ("They differ on " + "; ".join(
            f"{quote(a['change'].split(':')[0])} ({a['step']}: {a['decision']} in Lightning, {b['decision']} in Keras)"
            for a, b in differ) + ". ")
        one = int(both[0][0]["seeds"]) == 1
        runs = "one run" if one else f"{n.text(f'ladder_{dataset}_lightning_seeds')} seeds' runs"
        text += ("The parity suite holds the two frameworks' models and recipes equal, so a disagreement is the noise "
                 f"of {runs} per step (other initial weights, other augmentation draws), not a difference between the "
                 "frameworks; and after the first one the two ladders test later steps against different kept "
                 "chains, so later disagreements partly follow from it. The decisions near the threshold are the ones "
                 + ("to re-run with the full budget's three seeds per step, whose pooled paired test resolves smaller "
                    "gains." if one else "to re-run with more seeds per step."))
        claim(ctx, text)


def _paired(paired: list[dict], sigma: float, a: str, b: str) -> dict | None:
    return next((t for t in paired if t["sigma"] == sigma and t["a"] == a and t["b"] == b), None)


def denoise(ctx, rows: list[dict], sigmas: list[float], record: dict, paired: list[dict] = ()) -> None:
    """The improved network against the best classical filter, per noise level: the difference of mean PSNRs, and
    where the study ran it, the paired t-test over the same test images (a gain counts when it passes)."""
    n = ctx.numbers
    parts, ahead, tested = [], 0, False
    for s in sigmas:
        classical = best_classical(rows, s)
        improved = next((r for r in rows if r["sigma"] == s and r["method"] == LABELS["improved"]), None)
        if improved is None:
            continue
        gain = improved["psnr"] - classical["psnr"]
        n.add(f"denoise_gain_{s:g}", gain, f"{gain:+.2f}", record, "dB")
        test = _paired(paired, s, LABELS["improved"], classical["method"])
        if test is not None:
            tested = True
            n.add(f"denoise_p_gain_{s:g}", test["p"], p_text(test["p"]), record)
        parts.append(f"σ {n.text(f'denoise_sigma_{s:g}')}: {n.text(f'denoise_gain_{s:g}')} dB ({classical['method']}"
                     + (f", p {n.text(f'denoise_p_gain_{s:g}')}" if test is not None else "") + ")")
        ahead += gain > 0 and (test is None or test["p"] < ALPHA)
    if parts:
        n.add("denoise_unet_ahead", ahead, str(ahead), record)
        n.add("denoise_sigmas", len(parts), str(len(parts)), record)
        claim(ctx, "PSNR of the improved U-Net minus that of the best tuned classical filter (named) at each noise "
                   "level" + (" (p: paired t-test over the same test images)" if tested else "") + " — "
                   + "; ".join(parts) + f". The network is ahead"
                   + (" beyond noise" if tested else "") + f" at {n.text('denoise_unet_ahead')} of "
                   f"{n.text('denoise_sigmas')} noise levels at this budget"
                   + ("." if ahead == len(parts) else "; a network trained on few images or for a short time "
                      "does not yet beat a tuned filter (docs/denoise.md has the full budget)."))


def improved(ctx, dataset: str, found: dict, specified: dict) -> None:
    """The shipped improved recipe against the specified CNN (paired per seed on the same test images; Welch over
    seeds), framework by framework, and the two frameworks against each other."""
    n, title = ctx.numbers, SPECS[dataset].title
    said = []
    for fw in ("lightning", "keras"):
        tag = f"improved_{dataset}_{fw}"
        if (dataset, fw) not in found:
            continue
        text = (f"in {fw.capitalize()} the recipe reaches {n.text(tag + '_test_acc_mean')} over "
                f"{plural(n.text(tag + '_seeds'), 'seed')}")
        if f"{tag}_vs_specified_p" in n.entries:
            p = n.value(f"{tag}_vs_specified_p")
            ahead = n.value(f"{tag}_vs_specified_only_improved") > n.value(f"{tag}_vs_specified_only_specified")
            text += (f" against the specified CNN's {n.text(f'specified_{fw}_test_acc_mean')}; on the same test images "
                     f"({n.text(tag + '_vs_specified_pairs')} seed pair(s)) {n.text(tag + '_vs_specified_only_improved')} "
                     f"image-runs are right only for the improved recipe and "
                     f"{n.text(tag + '_vs_specified_only_specified')} only for the specified CNN, McNemar's p "
                     f"{n.text(tag + '_vs_specified_p')}: "
                     + (("an improvement beyond noise" if ahead else "worse beyond noise") if p < ALPHA else
                        "within noise"))
            if f"{tag}_vs_specified_welch_p" in n.entries:
                text += f" (Welch over the seeds: p {n.text(tag + '_vs_specified_welch_p')})"
        said.append(text)
    if not said:
        return
    text = f"The shipped {title} recipe, trained as a user trains it: " + "; ".join(said) + ". "
    both = [found.get((dataset, fw)) for fw in ("lightning", "keras")]
    if all(both):
        tag = f"improved_{dataset}_framework"
        ps = frameworks_tested(ctx, tag, *both, SPECS[dataset].test_size)
        evidence = [f"Welch's p {n.text(tag + '_welch_p')}"] if f"{tag}_welch_p" in n.entries else []
        if f"{tag}_mcnemar_p" in n.entries:
            evidence.append(f"McNemar's p {n.text(tag + '_mcnemar_p')} on the same test images, seed by seed")
        if evidence:
            text += ("Lightning against Keras: " + ", ".join(evidence) + (
                ": the frameworks differ beyond noise on this recipe." if min(ps) < ALPHA else
                ": within noise, as the recipe-parity checks predict."))
    claim(ctx, text)


def improved_confusions(ctx, dataset: str, found: dict, specified: dict) -> None:
    """Where the shipped recipe still goes wrong (Lightning's runs), and on MNIST whether the specified CNN's most
    frequent confusions are among them; a pair of classes confused both ways is named as such."""
    shipped = found.get((dataset, "lightning"))
    if not shipped:
        return
    classes, tag = SPECS[dataset].classes, f"improved_{dataset}_lightning"
    text, pairs = confusions(ctx, tag, f"The improved {SPECS[dataset].title} network (Lightning)",
                             [m.get("confusion_matrix") for m in shipped["runs"]], classes, shipped["record"])
    if not text:
        return
    text += ". "
    both_ways = [(a, b) for a, b in pairs if (b, a) in pairs and a < b]
    if both_ways:
        text += ("Its confusions run both ways between " + " and ".join(f"{quote(a)} and {quote(b)}" for a, b in both_ways)
                 + ": classes whose images look alike, not a bias towards one label. ")
    before = confused_pairs([m.get("confusion_matrix") for m in specified["lightning"]["runs"]]) if (
        dataset == "mnist" and "lightning" in specified) else None
    if before and before[1]:
        kept = [(classes[t], classes[p]) for t, p, _ in before[1] if (classes[t], classes[p]) in pairs]
        text += ("Of the specified CNN's most frequent confusions, " + (
            " and ".join(f"{quote(t)} as {quote(p)}" for t, p in kept)
            + (" remains" if len(kept) == 1 else " remain") + " among the improved network's: "
            "the changes cut errors without changing which digits are hard." if kept else
            "none is among the improved network's: the changes removed those errors first."))
    claim(ctx, text.strip())


def frameworks_tested(ctx, tag: str, lightning: dict, keras: dict, test_images: int) -> list[float]:
    """Lightning against Keras on one recipe over the same seeds, each result registered under ``tag``: Welch's
    t-test over the seeds (``{tag}_welch_p``), and McNemar's on the same test images (``{tag}_only_lightning``,
    ``_only_keras``, ``_mcnemar_p``, ``_pairs``). The runs of one seed share the epoch order in both frameworks
    (lightning_impl.data.order), so each seed's two runs are a pair. Returns the p-values found."""
    n, found = ctx.numbers, []
    p = welch(lightning["values"], keras["values"])
    if p == p:
        n.add(f"{tag}_welch_p", p, p_text(p), lightning["record"])
        found.append(p)
    pairs = [(a, b) for a, b in zip(lightning["runs"], keras["runs"]) if "test_errors" in a and "test_errors" in b]
    if pairs:
        test = mcnemar([a["test_errors"] for a, _ in pairs], [b["test_errors"] for _, b in pairs], test_images)
        n.add(f"{tag}_only_lightning", test.old_only, f"{test.old_only:,}", lightning["record"])
        n.add(f"{tag}_only_keras", test.new_only, f"{test.new_only:,}", lightning["record"])
        n.add(f"{tag}_mcnemar_p", test.p, p_text(test.p), lightning["record"])
        n.add(f"{tag}_pairs", len(pairs), str(len(pairs)), lightning["record"])
        found.append(test.p)
    return found


def confused_pairs(matrices: list, top: int = 3):
    """Test confusion matrices (metrics.json's ``confusion_matrix``, rows the true class) summed over runs: the sum,
    and its ``top`` most frequent (true, predicted, count) off the diagonal, most frequent first; None when no run
    recorded a matrix."""
    import numpy as np

    matrices = [m for m in matrices if m is not None]
    if not matrices:
        return None
    cm = np.sum(np.asarray(matrices, dtype=np.int64), axis=0)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    pairs = [divmod(int(i), len(cm)) for i in np.argsort(off, axis=None, kind="stable")[::-1][:top]]
    return cm, [(t, p, int(off[t, p])) for t, p in pairs if off[t, p] > 0]


def confusions(ctx, tag: str, who: str, matrices: list, classes, record: dict, top: int = 3) -> tuple[str, list]:
    """Where a classifier goes wrong, from its runs' test confusion matrices (``confused_pairs``): its errors, the
    most frequent confusions, their share of its errors and its weakest class, each registered under ``tag``; a
    clause naming them ('' when no run recorded a matrix) and the pairs, as (true, predicted) class names. Class
    names are quoted: a digit's name is not a result."""
    found = confused_pairs(matrices, top)
    if found is None:
        return "", []
    (cm, pairs), n = found, ctx.numbers
    runs_n = sum(m is not None for m in matrices)
    total = int(cm.sum() - cm.trace())
    n.add(f"{tag}_errors", total, f"{total:,}", record)
    runs = ""
    if runs_n > 1:
        n.add(f"{tag}_runs", runs_n, str(runs_n), record)
        runs = f", summed over its {n.text(tag + '_runs')} runs"
    if total == 0:
        return f"{who} gets every test image right{runs}", []
    named = []
    for k, (t, p, count) in enumerate(pairs, 1):
        n.add(f"{tag}_confusion_{k}", count, f"{count:,}", record)
        named.append(f"a true {quote(classes[t])} as {quote(classes[p])} ({n.text(f'{tag}_confusion_{k}')})")
    share = sum(count for _, _, count in pairs) / total
    n.add(f"{tag}_confusion_share", share, f"{100 * share:.0f} %", record)
    recall = cm.diagonal() / cm.sum(axis=1).clip(min=1)
    worst = int(recall.argmin())
    n.add(f"{tag}_weakest_recall", float(recall[worst]), f"{100 * recall[worst]:.2f} %", record)
    return (f"{who} makes {n.text(tag + '_errors')} test errors{runs}; most often it reads " + ", ".join(named)
            + f", together {n.text(tag + '_confusion_share')} of its errors; its weakest class is "
            f"{quote(classes[worst])}, {n.text(tag + '_weakest_recall')} of whose test images it gets right",
            [(classes[t], classes[p]) for t, p, _ in pairs])


def welch(a: list[float], b: list[float]) -> float:
    """Welch's t-test over seeds (unequal variances), two-sided p; nan with fewer than two values a side, or none
    of spread on either side (identical runs)."""
    from scipy import stats

    if min(len(a), len(b)) < 2 or statistics.pvariance(a) + statistics.pvariance(b) == 0:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def denoise_reference(ctx, rows: list[dict], sigmas: list[float], record: dict, paired: list[dict] = ()) -> None:
    """The exercise's autoencoder against doing nothing (the noisy input itself), per noise level, and why it can
    lose at low noise: a reconstruction floor, read from how little its PSNR moves with σ."""
    n = ctx.numbers
    ae, noisy = LABELS["reference"], "noisy input"
    found = [(s, r, x) for s in sigmas
             if (r := next((q for q in rows if q["sigma"] == s and q["method"] == ae), None))
             and (x := next((q for q in rows if q["sigma"] == s and q["method"] == noisy), None))]
    if not found:
        return
    parts, behind, tested = [], [], False
    for s, r, x in found:
        gain = r["psnr"] - x["psnr"]
        n.add(f"denoise_ae_over_noisy_{s:g}", gain, f"{gain:+.2f}", record, "dB")
        test = _paired(paired, s, ae, noisy)
        if test is not None:
            tested = True
            n.add(f"denoise_p_ae_over_noisy_{s:g}", test["p"], p_text(test["p"]), record)
        parts.append(f"σ {n.text(f'denoise_sigma_{s:g}')}: {n.text(f'denoise_ae_over_noisy_{s:g}')} dB"
                     + (f" (p {n.text(f'denoise_p_ae_over_noisy_{s:g}')})" if test is not None else ""))
        if gain <= 0 or (test is not None and test["p"] >= ALPHA):
            behind.append(s)
    n.add("denoise_ae_behind", len(behind), str(len(behind)), record)
    text = ("The exercise's autoencoder against the noisy input it is given (PSNR of its output minus that of its "
            "input" + ("; p: paired t-test over the same test images" if tested else "") + ") — "
            + "; ".join(parts) + ". ")
    if not behind:
        text += ("It improves on its input at every noise level" + (" beyond noise" if tested else "") + ": its "
                 "downsampled bottleneck blurs fine detail whatever the noise, but given enough updates (the "
                 "study's settings above) it restores more than it blurs, even at the lowest σ.")
    else:
        ae_psnr = [r["psnr"] for _, r, _ in found]
        noisy_psnr = [x["psnr"] for _, _, x in found]
        ae_range, noisy_range = max(ae_psnr) - min(ae_psnr), max(noisy_psnr) - min(noisy_psnr)
        n.add("denoise_ae_psnr_range", ae_range, f"{ae_range:.2f}", record, "dB")
        n.add("denoise_noisy_psnr_range", noisy_range, f"{noisy_range:.2f}", record, "dB")
        lowest = behind == [s for s, _, _ in found][: len(behind)] and len(behind) < len(found)
        text += (f"It does no better than doing nothing{' beyond noise' if tested else ''} at "
                 f"{n.text('denoise_ae_behind')} noise level(s)"
                 + (", the lowest ones, where the input is already close to clean. " if lowest else ". ")
                 + f"Across the noise levels its output's PSNR spans "
                 f"{n.text('denoise_ae_psnr_range')} dB while the input's spans {n.text('denoise_noisy_psnr_range')} dB")
        if ae_range < noisy_range / 2:
            text += (": the output barely depends on how noisy the input was, the mark of a reconstruction floor. "
                     "Everything the autoencoder returns has passed through its downsampled bottleneck, which blurs "
                     "fine detail (edges, texture) whatever the noise; at low σ that blur costs more than the noise "
                     "it removes. The U-Net's skip connections pass the input's detail around the bottleneck, which is "
                     "the change the improved network makes.")
        else:
            text += "; a longer training budget is the first thing to try before blaming the architecture."
    claim(ctx, text)


def conclusion(ctx) -> None:
    """What the practical found, in one paragraph per exercise, from numbers the sections registered."""
    n = ctx.numbers
    has = lambda *keys: all(k in n.entries for k in keys)  # noqa: E731
    ctx.doc.add(Heading("Conclusion"))
    if ctx.budget == "smoke":
        ctx.doc.add(Para("At the smoke budget every network sees a small share of one epoch: the conclusions below "
                         "are what the pipeline concludes from such runs, not findings about the methods."))
    parts = []
    if has("specified_lightning_test_acc_mean", "baseline_test_acc"):
        parts.append(f"the specified CNN reaches {n.text('specified_lightning_test_acc_mean')} on the MNIST test set "
                     f"against HOG + SVM's {n.text('baseline_test_acc')}")
    shipped_any = False
    for dataset in ("mnist", "cifar10"):
        shipped = [(fw, f"improved_{dataset}_{fw}") for fw in ("lightning", "keras")
                   if has(f"improved_{dataset}_{fw}_test_acc_mean")]
        shipped_any = shipped_any or bool(shipped)
        if shipped:
            recipe = n.entries[shipped[0][1] + "_test_acc_mean"]["configs"][0]  # the recipe file the runs trained
            text = (f"the shipped {SPECS[dataset].title} recipe (configs/{recipe}) reaches "
                    + " and ".join(f"{n.text(tag + '_test_acc_mean')} in {fw.capitalize()}"
                                   + (" (one seed)" if n.value(tag + "_seeds") == 1 else "") for fw, tag in shipped))
            verdicts = {}
            for fw, tag in shipped:
                if has(tag + "_vs_specified_p"):
                    ahead = n.value(tag + "_vs_specified_only_improved") > n.value(tag + "_vs_specified_only_specified")
                    verdict = (("ahead of" if ahead else "behind") + " the specified CNN beyond noise"
                               if n.value(tag + "_vs_specified_p") < ALPHA else "within noise of the specified CNN")
                    verdicts.setdefault(verdict, []).append(
                        f"McNemar's p {n.text(tag + '_vs_specified_p')} in {fw.capitalize()}")
            if verdicts:
                text += ", " + " and ".join(f"{verdict} ({', '.join(ps)})" for verdict, ps in verdicts.items())
            parts.append(text)
        for framework in ("lightning", "keras"):
            tag, title = f"ladder_{dataset}_{framework}", SPECS[dataset].title
            if not has(f"{tag}_first_test_acc", f"{tag}_final_test_acc", f"{tag}_kept", f"{tag}_tried"):
                continue
            text = (f"on {title} the {framework.capitalize()} ladder kept {n.text(tag + '_kept')} of "
                    f"{n.text(tag + '_tried')} changes, ")
            parts.append(text + (f"taking test accuracy from {n.text(tag + '_first_test_acc')} % to "
                                 f"{n.text(tag + '_final_test_acc')} %" if n.value(tag + "_kept") else
                                 f"so its improved network is the specified CNN itself ("
                                 f"{n.text(tag + '_first_test_acc')} % test at this budget)"))
    if parts:
        claim(ctx, "Exercise 1: " + "; ".join(parts) + ". Each kept change is one whose gain the paired test tells "
                   "from noise; the final architectures above are those chains."
              + (" The shipped recipe is a chosen chain (its header says which steps), trained whole over seeds, "
                 "while a ladder judges each change alone against the chain kept so far, with this budget's runs "
                 "(one seed a step; on CIFAR-10 one epoch): a change it leaves out was behind, or not told from "
                 "noise, in those runs, which is no verdict on the same change inside the whole recipe."
                 if shipped_any and ctx.budget != "full" else ""))
    if has("denoise_unet_ahead", "denoise_sigmas"):
        text = (f"Exercise 2: the improved U-Net beats the best tuned classical filter at "
                f"{n.text('denoise_unet_ahead')} of {n.text('denoise_sigmas')} noise levels")
        if has("denoise_ae_behind") and n.value("denoise_ae_behind"):
            text += (f", and the exercise's autoencoder falls behind its own noisy input at "
                     f"{n.text('denoise_ae_behind')} of them (the discussion of the study says why)")
        elif has("denoise_ae_behind"):
            text += ", and the exercise's autoencoder improves on its noisy input at every one"
        claim(ctx, text + ".")
    if has("parity_passed", "parity_checks"):
        everything = n.value("parity_passed") == n.value("parity_checks")
        claim(ctx, f"Both frameworks: {n.text('parity_passed')} of {n.text('parity_checks')} parity checks pass"
                   + (", so the Lightning and Keras numbers above are two implementations of the same models and "
                      "recipes." if everything else
                      "; until the failed ones (appendix) pass, the two frameworks' numbers are not evidence about "
                      "the same models."))


def summary(ctx, specified: dict) -> None:
    n = ctx.numbers
    ctx.doc.add(Heading("Discussion"))
    lightning, keras = specified.get("lightning"), specified.get("keras")
    test_images = 10_000  # MNIST's test set, which every accuracy here is read on
    if lightning:
        n.add("mnist_test_images", test_images, f"{test_images:,}", lightning["record"])
    if lightning and keras:
        ml, mk = statistics.fmean(lightning["values"]), statistics.fmean(keras["values"])
        diff = ml - mk
        n.add("specified_framework_difference", diff, f"{100 * abs(diff):.2f}", lightning["record"])
        text = (f"The specified CNN reaches {n.text('specified_lightning_test_acc_mean')} in Lightning and "
                f"{n.text('specified_keras_test_acc_mean')} in Keras over {plural(n.text('specified_lightning_seeds'), 'seed')}: "
                f"the means differ by {n.text('specified_framework_difference')} pp. ")
        evidence = frameworks_tested(ctx, "specified_framework", lightning, keras, test_images)
        if "specified_framework_welch_p" in n.entries:
            text += (f"Welch's t-test over the seeds (unequal spreads) gives p {n.text('specified_framework_welch_p')}. ")
        if "specified_framework_mcnemar_p" in n.entries:
            text += (f"Paired on the same test images (each seed's two runs, which share the epoch order; "
                     f"{n.text('specified_framework_pairs')} pair(s)), {n.text('specified_framework_only_lightning')} "
                     f"image-runs are right only in Lightning and {n.text('specified_framework_only_keras')} only in "
                     f"Keras: McNemar's p {n.text('specified_framework_mcnemar_p')}. ")
        if not evidence:
            text += "With one seed per framework and no paired record there is no test to judge the difference by."
        elif min(evidence) < ALPHA:
            text += ("So the two pipelines differ beyond noise, although the parity checks show the same model "
                     "and the same recipe: what is left is each framework's kernels and arithmetic, and the draws "
                     "of initial weights, augmentation and dropout.")
        else:
            text += ("So the difference is within noise: no evidence that one framework trains this model better, "
                     "which is what the parity suite predicts.")
        claim(ctx, text)
    if lightning and "baseline_test_acc" in n.entries:
        base, cnn = n.value("baseline_test_acc"), statistics.fmean(lightning["values"])
        diff = cnn - base
        n.add("baseline_vs_cnn", diff, f"{100 * abs(diff):.2f}", lightning["record"])
        better = "the CNN" if diff > 0 else "HOG + SVM"
        text = (f"HOG + SVM reaches {n.text('baseline_test_acc')} against the CNN's "
                f"{n.text('specified_lightning_test_acc_mean')}: {better} is ahead by {n.text('baseline_vs_cnn')} pp. ")
        if "baseline_only_svm" in n.entries:
            text += (f"On the same test images (the CNN's first seed), {n.text('baseline_only_cnn')} digits are right "
                     f"only for the CNN and {n.text('baseline_only_svm')} only for the SVM: McNemar's p "
                     f"{n.text('baseline_mcnemar_p')}, "
                     + ("a difference beyond noise. " if n.value("baseline_mcnemar_p") < ALPHA else
                        "within noise: at this budget the two are level on this test set. ")
                     + "The figure of disagreements above shows what each gets that the other does not. ")
        text += (f"The SVM trains in {n.text('baseline_fit_s')} on {n.text('baseline_n_fit')} images and predicts the "
                 f"test set in {n.text('baseline_predict_s')}; the CNN trains in {n.text('specified_lightning_train_s')}")
        if "specified_lightning_test_s" in n.entries:
            text += f" and predicts it in {n.text('specified_lightning_test_s')}"
        text += (f", with {n.text('specified_lightning_parameters')} parameters against the SVM's "
                 f"{n.text('baseline_support_vectors')} support vectors of {n.text('baseline_features')} features each.")
        claim(ctx, text)
    baseline = ctx.of_kind("baseline")
    said = [confusions(ctx, "specified_lightning", "the specified CNN (Lightning)",
                       [m.get("confusion_matrix") for m in lightning["runs"]], SPECS["mnist"].classes,
                       lightning["record"])] if lightning else []
    if baseline:
        m = read_json(Path(baseline[0]["output"]) / "metrics.json")
        said.append(confusions(ctx, "baseline", "HOG + SVM", [m.get("confusion_matrix")], SPECS["mnist"].classes,
                               baseline[0]))
    clauses = [text for text, _ in said if text]
    if clauses:
        text = "Where they go wrong (the confusion matrices above, read off): " + "; ".join(clauses) + ". "
        if len(clauses) == 2:
            shared = [pair for pair in said[0][1] if pair in said[1][1]]
            text += ((f"Both methods have {' and '.join(f'{quote(t)} as {quote(p)}' for t, p in shared)} among their "
                      "most frequent confusions: digits whose shapes the two read alike, whichever features they "
                      "use.") if shared else
                     "The two methods' most frequent confusions differ: each fails on its own kind of digit, which "
                     "is why the figure of disagreements above shows images only one of them gets right.")
        claim(ctx, text)
    if "parity_checks" in n.entries:
        failed = n.value("parity_checks") - n.value("parity_passed")
        claim(ctx, f"Parity: {n.text('parity_passed')} of {n.text('parity_checks')} checks passed on "
                   f"{n.text('parity_backends')} Keras backend(s)"
                   + ("." if not failed else "; the failed rows are in the tables above, and the frameworks' "
                      "comparisons above are not evidence of the same model until they pass."))
