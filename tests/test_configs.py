"""Every recipe in configs/ parses as the command that names it would parse it, and the cheap ones build."""

from pathlib import Path

import pytest
import yaml

from core import configs
from lightning_impl.cli import make_cli
from lightning_impl.tasks.denoiser import Denoiser
from lightning_impl.train import classifier_cli
from lightning_impl.train_denoiser import DenoiserCLI
from lightning_impl.data.noise import NoisyDataModule

FOLDER = configs.folder()
RECIPES = sorted(p for p in FOLDER.glob("*.yaml"))


def is_denoiser(path: Path) -> bool:
    return path.name.startswith("denoise")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_parses_and_builds(path):
    args = ["--config", str(path), "--trainer.logger", "false", "--trainer.accelerator", "cpu", "--trainer.devices", "1"]
    if is_denoiser(path):
        cli = make_cli(DenoiserCLI, Denoiser, NoisyDataModule, args)
    else:
        cli = classifier_cli(args)
    assert cli.model is not None and cli.datamodule is not None
    assert cli.trainer.max_epochs == yaml.safe_load(path.read_text())["trainer"]["max_epochs"]


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_keras_reads_every_recipe_or_refuses_by_name(path):
    from keras_ref.recipes import RecipeError, classifier_recipe, denoiser_recipe

    read = denoiser_recipe if is_denoiser(path) else classifier_recipe
    try:
        recipe = read(path)
    except RecipeError as err:  # none is refused today; one that is names its key
        assert str(err).split(":")[0].startswith(("model.", "data.", "trainer.")), err
    else:
        assert recipe["epochs"] >= 1


def test_recipes_are_found_by_name_and_by_path():
    assert configs.find("mnist_improved.yaml") == FOLDER / "mnist_improved.yaml"
    assert configs.find("configs/mnist_improved.yaml").read_text() == (FOLDER / "mnist_improved.yaml").read_text()
    with pytest.raises(FileNotFoundError, match="no recipe"):
        configs.find("nowhere.yaml")


def test_the_budgets_are_one_vocabulary_declared_once():
    """Every command with budgets reads configs/experiments/budgets.yaml, under the same three names."""
    from core import budgets
    from experiments import ablation, denoising, practical

    for name in budgets.NAMES:
        for command in ("practical", "ablation", "denoising"):
            assert isinstance(budgets.budget(command, name), dict)
    for parse, extra in ((practical.parse_args, []), (ablation.parse_args, ["--dataset", "mnist"]),
                         (denoising.parse_args, [])):
        for name in budgets.NAMES:
            assert parse(["--budget", name, *extra]).budget == name
        with pytest.raises(SystemExit):  # the names of an earlier vocabulary are refused by every command
            parse(["--budget", "quick", *extra])
    with pytest.raises(ValueError, match="unknown budget 'quick'"):
        budgets.budget("ablation", "quick")


def test_a_ladder_budget_takes_its_datasets_own_overrides(monkeypatch):
    """A budget's ablation section holds every ladder's size; ``datasets: {<name>: {...}}`` overrides it for one
    dataset (the standard budget: MNIST's steps at their own epochs, CIFAR-10's cut to one), and an unknown dataset
    there is refused by name instead of being silently ignored."""
    from core import budgets

    standard = budgets.budget("ablation", "standard")
    mnist, cifar = budgets.ladder("standard", "mnist"), budgets.ladder("standard", "cifar10")
    assert "datasets" not in mnist and "datasets" not in cifar
    assert mnist["epochs"] is None and cifar["epochs"] == standard["epochs"] == 1
    assert mnist["train_fraction"] == cifar["train_fraction"] == 1.0  # every step on the whole training split
    assert budgets.ladder("smoke", "mnist") == budgets.budget("ablation", "smoke")  # no overrides: the section
    table = {**budgets._table(), "standard": {**budgets._table()["standard"],
                                              "ablation": {**standard, "datasets": {"mnsit": {"epochs": 3}}}}}
    monkeypatch.setattr(budgets, "_table", lambda: table)
    with pytest.raises(ValueError, match="no dataset 'mnsit'"):
        budgets.ladder("standard", "mnist")


def test_an_unset_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    from core import precision

    assert precision.resolve("16-mixed", "cpu") == "16-mixed"  # an explicit setting wins
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve(None, "cpu") == "32-true"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve(None, "cpu") == "bf16-mixed"
    assert configs.load("mnist_specified_cnn.yaml")["trainer"]["precision"] == "32-true"  # the default run: float32
    assert configs.load("cifar10_fast.yaml")["trainer"]["precision"] is None  # the CPU recipe: the machine decides


def test_a_step_that_only_asks_for_bf16_trains_nothing_new_where_bf16_is_not_native(monkeypatch):
    """The ladder's guard against a speed-only step (no committed step is one: test_improved checks that): a config
    whose only change is an unset precision is the previous one where that resolves to float32."""
    from experiments.ablation import merged_config, load_ladder, same_on_this_machine
    from core import precision

    base = merged_config(load_ladder("cifar10")[:1])
    fp32 = {**base, "trainer": {**base["trainer"], "precision": "32-true"}}
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert same_on_this_machine(base, fp32)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert not same_on_this_machine(base, fp32)
