"""`python -m keras_ref.train`: the Keras twin trains on the shared split and reaches the smoke-run floor."""

import json

import pytest

from keras_ref.train import RECIPE, main, parse_args


def test_one_epoch_on_full_mnist(tmp_path, capsys):
    metrics = main(["--epochs", "1", "--runs-dir", str(tmp_path), "--verbose", "0"])
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert metrics["test_acc"] >= 0.97
    assert metrics["parameters"] == 58796
    assert json.loads(open(f"{run_dir}/metrics.json").read())["test_acc"] == metrics["test_acc"]
    assert (tmp_path / "keras_mnist_specified_cnn" / "version_0" / "metrics.csv").exists()


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "svhn"])


def test_a_yaml_recipe_goes_to_the_improved_cnn_trainer(monkeypatch):
    from keras_ref import improved_cnn

    calls = []
    monkeypatch.setattr(improved_cnn, "main", lambda argv: calls.append(argv) or {"test_acc": 0.5})
    assert main(["--config", "configs/mnist_improved.yaml", "--epochs", "2", "--verbose", "0"]) == {"test_acc": 0.5}
    assert calls == [["--config", "configs/mnist_improved.yaml", "--runs-dir", "runs", "--verbose", "0", "--epochs", "2"]]
    args = parse_args([])  # without a YAML the default recipe still fills in
    assert (args.epochs, args.seed) == (RECIPE["epochs"], 42)


@pytest.mark.parametrize("extra", [["--lr", "0.1"], ["--dataset", "cifar10"], ["--no-download"]])
def test_a_yaml_recipe_refuses_options_it_would_override(extra, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--config", "configs/mnist_improved.yaml", *extra])
    assert "cannot be combined with --config" in capsys.readouterr().err


def test_the_ladder_trainer_runs_on_a_share_of_mnist_and_records_its_run(tmp_path):
    from keras_ref.improved_cnn import load_recipe, train
    from experiments.ablation import load_ladder, merged_config

    recipe = {**load_recipe(merged_config(load_ladder("mnist")[:1])), "epochs": 1}  # the ladder's base step
    metrics = train(recipe, runs_dir=str(tmp_path), verbose=0, train_fraction=0.05)
    assert metrics["val_images"] == 6000  # validation and test are never cut by train_fraction
    assert metrics["test_acc"] > 0.5 and metrics["best_val_acc"] > 0.5  # 3,000 images learn digits past chance
    saved = json.loads(open(f"{metrics['run_dir']}/metrics.json").read())
    assert saved == metrics and len(saved["epoch_time_s"]) == 1
