"""`python -m keras_ref.train`: the Keras twin trains the Lightning recipe on the shared split."""

import json

import pytest

from experiments.ablation import load_ladder, merged_config
from keras_ref.recipes import RecipeError, classifier_recipe
from keras_ref.train import main, parse_args, train
from core import configs


@pytest.mark.slow
def test_one_epoch_on_full_mnist(tmp_path, capsys):
    metrics = main(["--epochs", "1", "--runs-dir", str(tmp_path), "--quiet"])
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert metrics["test_acc"] >= 0.97
    assert metrics["parameters"] == 58796 and metrics["model"] == "SpecifiedCNN"
    assert json.loads(open(f"{run_dir}/metrics.json").read())["test_acc"] == metrics["test_acc"]
    # Beside the Lightning run of the same recipe: runs/<logger name>_keras/version_<n>
    assert (tmp_path / "mnist_specified_cnn_keras" / "version_0" / "metrics.csv").exists()


def test_the_default_recipe_is_the_lightning_default():
    recipe = parse_args([]).recipe
    lightning = configs.load("mnist_specified_cnn.yaml")
    assert recipe["epochs"] == lightning["trainer"]["max_epochs"]
    assert recipe["batch_size"] == lightning["data"]["init_args"]["batch_size"]
    assert recipe["optimizer"] == lightning["model"]["optimizer"]
    assert (recipe["net"], recipe["seed"]) == ("SpecifiedCNN", lightning["seed_everything"])


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--seed", "-1"], ["--limit-train", "0"], ["--config", "nowhere.yaml"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        parse_args(argv)
    assert exit.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize("change,key", [
    ({"trainer": {"accumulate_grad_batches": 2}}, "accumulate_grad_batches"),
    ({"trainer": {"gradient_clip_val": 1.0}}, "gradient_clip_val"),
    ({"trainer": {"max_epoch": 2}}, "max_epoch"),
    ({"data": {"init_args": {"batch_sise": 32}}}, "batch_sise"),
    ({"model": {"optimizer": {"init_args": {"lr": -1}}}}, "lr"),
    ({"bogus": 1}, "bogus"),
])
def test_a_recipe_keras_cannot_follow_is_refused_by_name(change, key):
    config = configs.merge(configs.load("mnist_specified_cnn.yaml"), change)
    with pytest.raises(RecipeError, match=key):
        recipe = classifier_recipe(config)
        from keras_ref.train import build

        build(recipe, (28, 28, 1), 10, 1)


@pytest.mark.slow
def test_the_ladder_trainer_runs_on_a_share_of_mnist_and_records_its_run(tmp_path):
    recipe = {**classifier_recipe(merged_config(load_ladder("mnist")[:1])), "epochs": 1}  # the ladder's base step
    metrics = train(recipe, runs_dir=str(tmp_path), verbose=0, limit_train=0.05)
    assert metrics["val_images"] == 6000  # validation and test are never cut by limit_train
    assert metrics["test_acc"] > 0.5 and metrics["best_val_acc"] > 0.5  # 2,700 images learn digits past chance
    saved = json.loads(open(f"{metrics['run_dir']}/metrics.json").read())
    assert saved == metrics and len(saved["epoch_time_s"]) == 1 and saved["finished"]
