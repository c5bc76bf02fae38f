"""`python -m lightning_impl.train`: real MNIST smoke run, run folders, the config file equals the defaults."""

import json

import pytest

from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.data.datamodules import ImageDataModule
from lightning_impl.train import TrainCLI, main


def parsed(args):
    cli = TrainCLI(ImageClassifier, ImageDataModule, subclass_mode_data=True, run=False, args=args)
    config = cli.config.as_dict()
    config.pop("config", None)
    config["data"].pop("class_path")  # spelled lightning_impl.data[.datamodules].MNISTDataModule: same class
    return config, type(cli.datamodule), type(cli.model.net)


def test_the_default_run_is_its_config_file():
    assert parsed(["--config", "configs/mnist_specified_cnn.yaml"]) == parsed([])


@pytest.mark.slow
def test_one_epoch_on_full_mnist(tmp_path, capsys):
    args = ["--trainer.max_epochs", "1", "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false"]
    metrics = main(args)
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert metrics["test_acc"] >= 0.97 and metrics["run_dir"] == run_dir  # the callers (check 5) find the run by it
    saved = json.loads(open(f"{run_dir}/metrics.json").read())
    assert saved["test_acc"] == metrics["test_acc"] and saved["parameters"] == 58796
    assert saved["val_images"] == 6000  # the 10 % held out of MNIST's 60,000 training images
    # The test images it gets wrong (kept from test(), not scored again) are as many as its accuracy says.
    assert len(saved["test_errors"]) == round((1 - saved["test_acc"]) * 10_000)
    assert 0 < len(saved["val_errors"]) < 6000 * 0.03
    for name in ("config.yaml", "metrics.csv", "checkpoints"):
        assert (tmp_path / "mnist_specified_cnn" / "version_0" / name).exists(), name
    # A second run gets a folder of its own.
    main(args + ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"])
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("version_1")
    assert json.loads(open(f"{run_dir}/metrics.json").read()) == saved
