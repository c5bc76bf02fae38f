"""Every numeric option of every entry point, and every numeric value of a Keras recipe, fed a negative number, a
zero, a NaN and a huge value: each is refused in one line naming the option (exit status 2, no traceback) before
any work starts -- or it is one of the values listed in ACCEPTED, each with what it means, and the run is then
seen to start. The options are found, not listed: from each argparse parser, and from LightningCLI's own help.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is run from the checkout, not installed
HUGE = {"int": str(10**30), "float": "1e308"}


def values(kind: str) -> list[str]:
    return ["-1", "0", "nan", HUGE[kind]]


# ----------------------------------------------------------------------------- argparse entry points

ARGPARSE = [
    "keras_ref.train", "keras_ref.train_denoiser", "keras_ref.predict", "lightning_impl.predict", "lightning_impl.export",
    "lightning_impl.ensemble", "experiments.denoising", "experiments.ablation", "experiments.practical",
    "experiments.report", "parity.__main__", "parity.baseline", "parity.convert", "parity.drift",
    "benchmarks.epoch_time", "benchmarks.keras_backends", "benchmarks.time_to_accuracy", "benchmarks.keras_batchnorm",
    "benchmarks.denoise_variants", "benchmarks.throughput", "benchmarks.bm3d_check", "benchmarks.recipes",
    "benchmarks.recipe_elements", "benchmarks.test_time_views", "benchmarks.parts_at_once", "benchmarks.parity_gap",
    "benchmarks.compute_budget",
]
NOT_ENTRY_POINTS = {"core.flags": "the shared vocabulary itself", "keras_ref.backend": "adds --backend to others' parsers"}
REQUIRED = {  # what each needs besides the option, so that a refusal is the option's
    "experiments.report": ["--update-docs", "results.json"],
    "experiments.ablation": ["--dataset", "mnist"],
    "lightning_impl.export": ["runs/x"],
    "lightning_impl.predict": ["runs/x", "digit.png"],
    "keras_ref.predict": ["runs/x", "digit.png"],
}
ARGPARSE_ACCEPTED = {  # (option, value) -> what it means; by module where one spelling means two things
    ("--seed", "0"): "the first seed",
    ("--sigma", "0"): "no noise (a denoiser trained on clean images learns the identity)",
    ("--eval-sigma", "0"): "noise-free validation and test copies",
    ("--warmup", "0"): "no untimed steps before the timing",
}


class Captured(Exception):
    pass


def parser_of(module) -> "flags.Parser":  # noqa: F821
    from core import flags

    def capture(self, *args, **kwargs):
        raise Captured(self)

    with mock.patch.object(flags.Parser, "parse_known_args", capture), pytest.raises(Captured) as got:
        module.parse_args([])
    return got.value.args[0]


def numeric_kind(action) -> str | None:
    """"int" or "float" when an option takes numbers (by what its type makes of one), else None."""
    if action.type is None or action.type is str or not action.option_strings:
        return None
    for probe, kind in (("1", "int"), ("0.5", "float")):
        try:
            value = action.type(probe)
        except Exception:  # noqa: BLE001 (a type that takes no such text)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return "float" if isinstance(value, float) else kind
    return None


def outcome(call) -> tuple[str, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            call()
            result = "accepted"
        except SystemExit as exit:
            result = f"exit {exit.code}"
    return result, [line for line in err.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize("name", ARGPARSE)
def test_every_numeric_option_of_an_argparse_entry_point_is_checked(name):
    module = importlib.import_module(name)
    options = [(a.option_strings[-1], kind) for a in parser_of(module)._actions if (kind := numeric_kind(a))]
    problems = []
    for option, kind in options:
        for value in values(kind):
            result, lines = outcome(lambda: module.parse_args([option, value, *REQUIRED.get(name, [])]))
            if (option, value) in ARGPARSE_ACCEPTED or (name, option, value) in ARGPARSE_ACCEPTED:
                if result != "accepted":
                    problems.append(f"{option} {value}: listed as accepted, but {result}: {lines[-1:]}")
            elif not (result == "exit 2" and len(lines) == 1 and lines[0].startswith("error:") and option in lines[0]):
                problems.append(f"{option} {value}: {result}, {lines[-3:]}")
    assert not problems, "\n".join(problems)


def test_every_parser_in_the_project_is_fuzzed():
    """A new entry point (or benchmark) with a parser of its own is in ARGPARSE, so its numbers are checked too."""
    found = set()
    for folder in ("lightning_impl", "keras_ref", "parity", "experiments", "benchmarks", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            if "add_argument(" in path.read_text():
                found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert found - set(NOT_ENTRY_POINTS) == set(ARGPARSE), (found - set(NOT_ENTRY_POINTS)) ^ set(ARGPARSE)


def test_the_fuzz_finds_the_options():
    """A parser whose options were not found would pass the test above with nothing checked."""
    options = {a.option_strings[-1] for a in parser_of(importlib.import_module("keras_ref.train_denoiser"))._actions
               if numeric_kind(a)}
    assert {"--epochs", "--seed", "--sigma", "--eval-sigma", "--batch-size", "--limit-train"} <= options


# ----------------------------------------------------------------------------- LightningCLI entry points


class Started(Exception):
    """The run reached its first training step: the value was accepted."""


def _started(*args, **kwargs):
    raise Started


LIGHTNING_ACCEPTED = {  # (option, value) -> what it means
    ("--trainer.fast_dev_run", "0"): "off",
    ("--trainer.min_epochs", "0"): "no minimum",
    ("--trainer.max_steps", "-1"): "no step limit (the epochs bound the run)",
    ("--trainer.min_steps", "0"): "no minimum",
    ("--trainer.limit_predict_batches", "0"): "no prediction batches (training never predicts)",
    ("--trainer.overfit_batches", "0"): "off",
    ("--trainer.num_sanity_val_steps", "-1"): "the whole validation set before training",
    ("--trainer.num_sanity_val_steps", "0"): "no sanity check",
    ("--trainer.gradient_clip_val", "0"): "no clipping",
    ("--trainer.reload_dataloaders_every_n_epochs", "0"): "never reloaded",
    ("--model.warmup_fraction", "0"): "no warm-up",
    ("--model.label_smoothing", "0"): "plain cross-entropy",
    ("--model.shift_tta", "0"): "no test-time shifts",
    ("--model.lookahead", "0"): "no lookahead",
    ("--model.optimizer.init_args.weight_decay", "0"): "no weight decay",
    ("--checkpoint.save_top_k", "-1"): "every checkpoint kept",
    ("--checkpoint.every_n_train_steps", "0"): "off",
    ("--figures.misclassified", "0"): "no gallery of misclassified images",
    ("--figures.denoised", "0"): "no grid of denoised images",
    ("--seed_everything", "0"): "seed 0",
    ("--data.init_args.split_seed", "0"): "split seed 0",
    ("--data.split_seed", "0"): "split seed 0",
    ("--data.sigma", "0"): "no noise",
    ("--data.eval_sigma", "0"): "noise-free validation and test copies",
}
# Options of the classes a recipe names (not in LightningCLI's --help, which lists the classes' names only).
CLASS_OPTIONS = {
    "lightning_impl.train": [("--data.init_args.batch_size", "int"), ("--data.init_args.eval_batch_size", "int"),
                             ("--data.init_args.val_fraction", "float"), ("--data.init_args.split_seed", "int"),
                             ("--model.optimizer.init_args.lr", "float"),
                             ("--model.optimizer.init_args.weight_decay", "float")],
    "lightning_impl.train_denoiser": [("--model.optimizer.init_args.lr", "float")],
}
SHARED = ("--trainer.", "--checkpoint.", "--figures.", "--seed_everything")  # the same code in both: checked once


def lightning_options(name: str) -> list[tuple[str, str]]:
    """The numeric options LightningCLI's --help lists (``(type: Optional[int], ...)``), and the classes' ones."""
    main = importlib.import_module(name).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    found = []
    for block in re.split(r"\n  (?=--)", out.getvalue()):
        option = re.match(r"(--[\w.]+)", block)
        typed = re.search(r"\(type: (.*?), default:", " ".join(block.split()))
        if option and typed and (kinds := re.findall(r"\b(int|float)\b", typed.group(1))):
            found.append((option.group(1), "float" if "float" in kinds else "int"))
    if name != "lightning_impl.train":
        found = [(o, k) for o, k in found if not o.startswith(SHARED)]
    return found + CLASS_OPTIONS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lightning_impl.train", "lightning_impl.train_denoiser"])
def test_every_numeric_option_of_a_lightning_entry_point_is_checked(name, tmp_path):
    from lightning_impl.tasks.classifier import ImageClassifier
    from lightning_impl.tasks.denoiser import Denoiser

    main = importlib.import_module(name).main
    options = lightning_options(name)
    assert len(options) >= (25 if name == "lightning_impl.train" else 10), options
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
             "--trainer.logger.init_args.save_dir", str(tmp_path)]
    problems = []
    with mock.patch.object(ImageClassifier, "training_step", _started), mock.patch.object(Denoiser, "training_step", _started):
        for option, kind in options:
            for value in values(kind):
                def call():
                    try:
                        main([option, value, *quiet])
                    except Started:
                        return
                    raise AssertionError("finished a run")

                result, lines = outcome(call)
                errors = [line for line in lines if line.startswith("error:")]
                if (option, value) in LIGHTNING_ACCEPTED:
                    if result != "accepted":
                        problems.append(f"{option} {value}: listed as accepted, but {result}: {errors}")
                elif not (result == "exit 2" and len(errors) == 1 and option.rsplit(".", 1)[-1] in errors[0]
                          and not any("Traceback" in line for line in lines)):
                    problems.append(f"{option} {value}: {result}, {errors or lines[-3:]}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- Keras recipe values

KERAS_RECIPE_KEYS = {  # YAML path -> what the classifier recipe translator must check
    ("model", "label_smoothing"): "float", ("model", "warmup_fraction"): "float",
    ("data", "init_args", "batch_size"): "int", ("data", "init_args", "val_fraction"): "float",
    ("data", "init_args", "split_seed"): "int", ("trainer", "max_epochs"): "int", ("seed_everything",): "int",
    ("model", "optimizer", "init_args", "lr"): "float", ("model", "optimizer", "init_args", "weight_decay"): "float",
    ("model", "optimizer", "init_args", "eps"): "float", ("model", "shift_tta"): "int",
}
KERAS_ACCEPTED = {
    ("model.label_smoothing", "0"): "plain cross-entropy", ("model.warmup_fraction", "0"): "no warm-up",
    ("data.init_args.split_seed", "0"): "split seed 0", ("seed_everything", "0"): "seed 0",
    ("model.optimizer.init_args.weight_decay", "0"): "no weight decay", ("model.shift_tta", "0"): "no test-time shifts",
}


def _nested(path: tuple[str, ...], value) -> dict:
    out = value
    for key in reversed(path):
        out = {key: out}
    return out


@pytest.mark.parametrize("path,kind", KERAS_RECIPE_KEYS.items(), ids=[".".join(p) for p in KERAS_RECIPE_KEYS])
def test_every_numeric_value_of_a_keras_recipe_is_checked(path, kind):
    import yaml

    from keras_ref.recipes import RecipeError, classifier_recipe, make_optimizer
    from core import configs

    key = ".".join(path)
    for text in values(kind):
        value = yaml.safe_load(text.replace("nan", ".nan"))
        config = configs.merge(configs.load("mnist_specified_cnn.yaml"), _nested(path, value))
        try:
            recipe = classifier_recipe(config)
            make_optimizer(recipe["optimizer"], 100 * recipe["epochs"], recipe["schedule"], recipe["warmup_fraction"])
        except RecipeError as err:
            assert (key, text) not in KERAS_ACCEPTED, f"{key} {text}: listed as accepted, but refused: {err}"
            assert key.rsplit(".", 1)[-1] in str(err) and "\n" not in str(err), f"{key} {text}: {err}"
        else:
            assert (key, text) in KERAS_ACCEPTED, f"{key} {text}: accepted"


def test_the_readme_lists_every_flag_of_the_vocabulary():
    """README's command-line table is the vocabulary's documentation: every flag of core.flags is in it."""
    from pathlib import Path

    from core import flags

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n\n", 3)[2]
    import re

    missing = [option for spelling, _ in flags.FLAGS.values() for option in spelling[-1:]
               if not re.search(rf"(?<![\w-]){option}(?![\w-])", table)]
    assert not missing, f"README's command-line table lacks {missing}"
