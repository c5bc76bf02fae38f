"""Train an image classifier, then evaluate its best checkpoint on the test set.

    python -m lightning_impl.train                         # specified CNN on MNIST: configs/mnist_specified_cnn.yaml
    python -m lightning_impl.train --config configs/mnist_improved.yaml
    python -m lightning_impl.train --trainer.accelerator gpu --trainer.devices 2
    python -m lightning_impl.train --help

The default recipe is configs/mnist_specified_cnn.yaml (keras_ref.train reads the same file); a --config and
flags are merged over it. Each run gets its own folder runs/<name>/version_<n>/ holding config.yaml,
metrics.csv (per epoch), checkpoints/ and metrics.json (test metrics); its path is the last line printed.
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LightningArgumentParser

from core.paired import wrong_positions
from core.plots import confusion_counts
from lightning_impl.cli import ProjectCLI, fit_then_test_best, make_cli, run_cli
from lightning_impl.data.datamodules import ImageDataModule
from lightning_impl.tasks.classifier import ImageClassifier

SUMMARY = ("test_acc", "test_loss", "best_val_acc", "epochs")  # the line printed before the run folder


class TrainCLI(ProjectCLI):
    recipe = "mnist_specified_cnn.yaml"  # the default run, in configs/

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")


def classifier_cli(args: list[str] | None = None) -> TrainCLI:
    """The classifier's CLI, parsed from ``args`` (None: the command line), not yet run."""
    return make_cli(TrainCLI, ImageClassifier, ImageDataModule, args, subclass_mode_data=True)


def errors(trainer, model, data) -> dict[str, list]:
    """The validation and test images the tested model (the epoch selected on validation) gets wrong, by position:
    what a paired comparison of two runs needs (core.paired; the ablation's keep rule, the report's tests); and the
    test set's confusion matrix (rows: true class, columns: predicted), from which the report names the confusions."""
    if trainer.world_size > 1:
        return {}  # each process predicts its own shard of the images: the record is a one-process one
    found = {}
    tested = torch.cat(getattr(model, "test_predictions", None) or [torch.zeros(0, dtype=torch.long)])
    for split, dataset in (("val", data.val_set), ("test", data.test_set)):
        if split == "test" and len(tested) == len(dataset):  # the whole test set, in order: scored by test() already
            predicted = tested
        else:
            data.predict_split = split  # through the DataModule: its batches are normalised as in validation and test
            predicted = torch.cat(trainer.predict(model, datamodule=data)).argmax(dim=1)
        found[f"{split}_errors"] = wrong_positions(predicted.tolist(), dataset.labels.tolist())
        if split == "test":
            found["confusion_matrix"] = confusion_counts(dataset.labels.tolist(), predicted.tolist(),
                                                         data.num_classes).tolist()
    data.predict_split = "test"
    return found


def fit_and_test(cli: TrainCLI) -> dict:
    results, checkpoint, timer, fit_s = fit_then_test_best(cli)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    return {
        "framework": "lightning",
        "dataset": data.dataset_name,
        "model": type(model.net).__name__,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "seed": cli.config.get("seed_everything"),
        "epochs": trainer.current_epoch,
        "best_checkpoint": checkpoint,
        "best_val_acc": float(trainer.checkpoint_callback.best_model_score or float("nan")),
        "val_images": len(data.val_set),  # the ablation's noise floor for best_val_acc needs it
        **results,
        "train_s": fit_s,
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
        "world_size": trainer.world_size,
        **errors(trainer, model, data),
    }


def main(args: list[str] | None = None) -> dict:
    return run_cli(lambda: classifier_cli(args), fit_and_test, SUMMARY)


if __name__ == "__main__":
    main()
