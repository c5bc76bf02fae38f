"""`python -m keras_ref.train`: the Keras twin trains on the shared split and reaches the smoke-run floor."""

import json

import pytest

from keras_ref.train import main, parse_args


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
