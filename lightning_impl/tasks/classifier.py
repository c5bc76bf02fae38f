"""The image-classification task: loss, metrics and optimisation around any architecture."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_impl.models import SpecifiedCNN
from lightning_impl.tasks.schedules import check_fraction, configure_optimizers
from lightning_impl.tasks.train_logging import TrainLogging


class ImageClassifier(TrainLogging):
    """Cross-entropy on logits; softmax only in `predict_step`, for probabilities.

    Args:
        net: the architecture (any nn.Module mapping images to logits); default SpecifiedCNN.
        optimizer: a callable taking the parameters, e.g. ``torch.optim.Adam`` (the default) or, from
            the command line, ``--model.optimizer SGD --model.optimizer.lr 0.1``.
        schedule: ``warmup_cosine`` (linear warm-up then cosine decay, per step, over the whole run),
            or ``constant``.
        warmup_fraction: share of the steps spent warming up.
        label_smoothing: passed to the cross-entropy loss.
        num_classes: for the accuracy metrics.
        channels_last: keep the net's weights and each batch in channels-last memory layout, which CPU
            (oneDNN) and GPU convolution kernels run faster (CIFAR-10 net on 2 CPU cores, bf16: 387 -> 476 images/s).
        flip_tta: validation, test and prediction average the logits of each image and of its mirror image
            (test-time augmentation). Only where a mirrored image keeps its label: photographs, never digits.
        norm_lr_scale: learning-rate multiplier for the BatchNorm parameters, whose weight decay is divided by
            the same factor so that it decays them as much per step as before (the airbench recipes train the
            BatchNorm shifts 64x faster than the weights: lightning_impl.models.whitened_cnn).
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        schedule: Literal["warmup_cosine", "constant"] = "warmup_cosine",
        warmup_fraction: float = 0.1,
        label_smoothing: float = 0.0,
        num_classes: int = 10,
        flip_tta: bool = False,
        channels_last: bool = False,
        norm_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_fraction("warmup_fraction", warmup_fraction, high_open=True)
        check_fraction("label_smoothing", label_smoothing)  # keras_ref.recipes refuses the same values
        if not num_classes >= 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net if net is not None else SpecifiedCNN(num_classes=num_classes)
        self.optimizer = optimizer
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # average="micro" is plain accuracy; torchmetrics' multiclass default is the macro average.
        # validate_args=False: the inputs are this module's own logits and the DataModule's labels, and checking
        # them (torch.unique and friends) on every step cost more than the update itself.
        acc = partial(MulticlassAccuracy, num_classes=num_classes, average="micro", validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = acc(), acc(), acc()
        self.train_epoch_metrics = ("train_acc",)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    def on_fit_start(self) -> None:
        # A net with a data-derived first layer (WhitenedCNN) gets it from the first 5,000 training images, once:
        # its ``whitened`` flag travels in checkpoints, so a resumed or fine-tuned run keeps the stem it trained with.
        if hasattr(self.net, "init_whitening") and not bool(self.net.whitened):
            datamodule = self.trainer.datamodule
            if datamodule is None or getattr(datamodule, "train_set", None) is None:
                raise RuntimeError(f"{type(self.net).__name__} initialises its first layer from training images: "
                                   "fit it with a DataModule that holds them (lightning_impl.data.datamodules)")
            images = datamodule.normalize(datamodule.train_set.images[:5000])
            self.net.init_whitening(images.to(self.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:  # same values, another memory order
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for evaluation and prediction: with ``flip_tta``, the mean over the image and its mirror."""
        logits = self(x)
        return (logits + self(x.flip(-1))) / 2 if self.hparams.flip_tta else logits

    def _shared_step(self, batch, stage: str, metric: MulticlassAccuracy) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x) if stage == "train" else self.eval_logits(x)
        loss = self.loss(logits, y)
        # update(), not metric(...): calling the metric also computes the batch's own accuracy (a copy, reset and
        # merge of its state every step), which nothing reads; the epoch value comes from compute().
        metric.update(logits.detach(), y)
        if stage != "train":  # training figures: TrainLogging, at the end of the epoch
            self.log(f"{stage}_loss", loss.detach(), on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(y))
            self.log(f"{stage}_acc", metric, on_step=False, on_epoch=True, prog_bar=True)
        return loss, logits

    def training_step(self, batch, batch_idx):
        loss = self._shared_step(batch, "train", self.train_acc)[0]
        self.log_train_step(loss, len(batch[1]), batch_idx)
        return loss

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx):
        # The logits go to the callbacks (RunFigures draws the confusion matrix and the misclassified images).
        return {"logits": self._shared_step(batch, "test", self.test_acc)[1].detach()}

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.eval_logits(x).softmax(dim=-1)

    def configure_optimizers(self):
        return configure_optimizers(self)
