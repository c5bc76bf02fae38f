"""The report's discussion, written from the numbers: every figure a sentence states is one the report registered
(`Numbers.add`), and every comparison says whether the difference is larger than its noise — the seed-to-seed
spread where there are several seeds, and the sampling error of an accuracy read on n images, sqrt(p(1-p)/n).
Each paragraph is a `Claim`; tests/test_report.py checks every number in every claim against results.json."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from experiments.document import Heading, Para
from experiments.denoising import LABELS, best_classical
from experiments.numbers import sampling_error


class Claim(Para):
    """A paragraph generated from the results (checked number by number against results.json)."""


def verdict(difference: float, noise: float) -> str:
    return "larger than" if abs(difference) > noise else "within"


def quote(name: str) -> str:
    """A config's own words (a ladder step's change), set apart from the numbers the discussion states."""
    return f"“{name}”"


def claim(ctx, text: str) -> None:
    ctx.doc.add(Claim(text))
    ctx.claims.append(text)


def ladder(ctx, dataset: str, framework: str, rows: list[dict]) -> None:
    """Which kept change helped most, by how much, and whether that is above the validation noise."""
    n, tag = ctx.numbers, f"ladder_{dataset}_{framework}"
    record = next(r for r in ctx.records if r["kind"] == "ladder" and r["meta"] == {"dataset": dataset, "framework": framework})
    runs = json.loads((Path(record["output"]) / "results.json").read_text())
    val_images = min((r["val_images"] for r in runs if r.get("val_images")), default=0)
    steps = [r for r in rows if r["decision"] == "kept" and float(r["delta_val"]) == float(r["delta_val"])]
    dropped = [r for r in rows if r["decision"] == "dropped"]
    if not steps or not val_images:
        return
    best = max(steps, key=lambda r: float(r["delta_val"]))
    before = float(best["val_acc_mean"]) - float(best["delta_val"])
    noise = sampling_error(before, val_images)
    n.add(f"{tag}_val_images", val_images, f"{val_images:,}", record)
    n.add(f"{tag}_val_noise", noise, f"{100 * noise:.2f}", record)
    delta = n.text(f"{tag}_{best['step']}_delta_val")
    first, last = rows[0], [r for r in rows if r["decision"] in ("first", "kept")][-1]
    text = (f"The kept change that helped most on validation was {quote(best['change'])} ({best['step']}): {delta} pp, "
            f"{verdict(float(best['delta_val']), noise)} the sampling error of a validation accuracy on "
            f"{n.text(tag + '_val_images')} images ({n.text(tag + '_val_noise')} pp). From the first step to the last "
            f"kept one, test accuracy went from {n.text(tag + '_' + first['step'] + '_test_acc')} % to "
            f"{n.text(tag + '_' + last['step'] + '_test_acc')} %.")
    if dropped:
        text += " Dropped (no gain on validation at this budget): " + "; ".join(quote(r["change"]) for r in dropped) + "."
    seeds = int(rows[0]["seeds"])
    if seeds == 1:
        text += " With one seed per step there is no seed spread: differences near the sampling error are not evidence."
    claim(ctx, text)


def denoise(ctx, rows: list[dict], sigmas: list[float], record: dict) -> None:
    """The improved network against the best classical filter, per noise level."""
    n = ctx.numbers
    parts, ahead = [], 0
    for s in sigmas:
        classical = best_classical(rows, s)
        improved = next((r for r in rows if r["sigma"] == s and r["method"] == LABELS["improved"]), None)
        if improved is None:
            continue
        gain = improved["psnr"] - classical["psnr"]
        n.add(f"denoise_gain_{s:g}", gain, f"{gain:+.2f}", record, "dB")
        parts.append(f"σ {n.text(f'denoise_sigma_{s:g}')}: {n.text(f'denoise_gain_{s:g}')} dB ({classical['method']})")
        ahead += gain > 0
    if parts:
        n.add("denoise_unet_ahead", ahead, str(ahead), record)
        n.add("denoise_sigmas", len(parts), str(len(parts)), record)
        claim(ctx, "PSNR of the improved U-Net minus that of the best tuned classical filter (named) at each noise "
                   "level — " + "; ".join(parts) + f". The network is ahead at {n.text('denoise_unet_ahead')} of "
                   f"{n.text('denoise_sigmas')} noise levels at this budget"
                   + ("." if ahead == len(parts) else "; a network trained on few images or for a short time "
                      "does not yet beat a tuned filter (docs/denoise.md has the full budget)."))


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
        noise = sampling_error((ml + mk) / 2, test_images)
        n.add("specified_test_noise", noise, f"{100 * noise:.2f}", lightning["record"])
        text = (f"The specified CNN reaches {n.text('specified_lightning_test_acc_mean')} in Lightning and "
                f"{n.text('specified_keras_test_acc_mean')} in Keras over {n.text('specified_lightning_seeds')} seed(s): "
                f"the means differ by {n.text('specified_framework_difference')} pp. ")
        if len(lightning["values"]) > 1 and len(keras["values"]) > 1:
            # Both are read on the same test images, so what separates two training pipelines is the seed spread:
            # the standard error of the difference of the two means.
            se = math.sqrt(sum(statistics.variance(x["values"]) / len(x["values"]) for x in (lightning, keras)))
            n.add("specified_difference_se", se, f"{100 * se:.2f}", lightning["record"])
            real = abs(diff) > 2 * se
            text += (f"From the seed-to-seed spreads, the standard error of that difference is "
                     f"{n.text('specified_difference_se')} pp, so the difference is "
                     + ("more than twice its standard error: the two pipelines do differ, though the parity checks "
                        "(above) show the same model — what differs is training (initial weights, data order, each "
                        "framework's kernels and optimiser arithmetic). " if real else
                        "within twice its standard error: no evidence that one framework trains this model better. "))
        else:
            text += "With one seed per framework there is no seed spread to judge the difference by. "
        text += (f"Each mean, as an estimate of the accuracy on unseen digits, carries a sampling error of "
                 f"{n.text('specified_test_noise')} pp from the {n.text('mnist_test_images')}-image test set.")
        claim(ctx, text)
    if lightning and "baseline_test_acc" in n.entries:
        base, cnn = n.value("baseline_test_acc"), statistics.fmean(lightning["values"])
        diff = cnn - base
        n.add("baseline_vs_cnn", diff, f"{100 * abs(diff):.2f}", lightning["record"])
        noise = sampling_error((base + cnn) / 2, test_images) * math.sqrt(2)
        n.add("baseline_vs_cnn_noise", noise, f"{100 * noise:.2f}", lightning["record"])
        better = "the CNN" if diff > 0 else "HOG + SVM"
        text = (f"HOG + SVM reaches {n.text('baseline_test_acc')} against the CNN's "
                f"{n.text('specified_lightning_test_acc_mean')}: {better} is ahead by {n.text('baseline_vs_cnn')} pp, "
                f"{verdict(diff, noise)} the sampling error of a difference of two accuracies read on "
                f"{n.text('mnist_test_images')} images ({n.text('baseline_vs_cnn_noise')} pp): "
                + ("at this budget the two are level on this test set. " if abs(diff) <= noise else
                   f"{better} is better on this test set. ") +
                f"The SVM trains in {n.text('baseline_fit_s')} on {n.text('baseline_n_fit')} images and predicts the "
                f"test set in {n.text('baseline_predict_s')}; the CNN trains in {n.text('specified_lightning_train_s')}")
        if "specified_lightning_test_s" in n.entries:
            text += f" and predicts it in {n.text('specified_lightning_test_s')}"
        text += (f", with {n.text('specified_lightning_parameters')} parameters against the SVM's "
                 f"{n.text('baseline_support_vectors')} support vectors of {n.text('baseline_features')} features each.")
        claim(ctx, text)
    if "parity_checks" in n.entries:
        failed = n.value("parity_checks") - n.value("parity_passed")
        claim(ctx, f"Parity: {n.text('parity_passed')} of {n.text('parity_checks')} checks passed on "
                   f"{n.text('parity_backends')} Keras backend(s)"
                   + ("." if not failed else "; the failed rows are in the tables above, and the frameworks' "
                      "comparisons above are not evidence of the same model until they pass."))
