"""The image-classification task: loss, metrics and optimisation around any architecture."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from lightning.pytorch.cli import OptimizerCallable
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from core import shift_views
from core.ranges import MAX_FLOAT
from core.whitening import WHITENING_IMAGES
from lightning_impl.models import SpecifiedCNN
from lightning_impl.tasks.schedules import check_fraction, configure_optimizers
from lightning_impl.tasks.train_logging import TrainLogging


# airbench94's lookahead: every ``lookahead`` steps the weights move to an exponential average of themselves, which
# keeps a share LOOKAHEAD_DECAY ** lookahead * (step / steps) ** 3 of the old average: nothing early on, most of it
# at the end, where the average smooths the last steps' noise; the last step takes the average whole.
LOOKAHEAD_DECAY = 0.95


def stem_images(datamodule) -> torch.Tensor:
    """The normalised training images a data-set stem is set from (core.whitening: the split's first ones)."""
    return datamodule.normalize(datamodule.train_set.images[:WHITENING_IMAGES])


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
        shift_tta: pixels; test and prediction average the logits of the image shifted by -s, 0, +s along each
            axis (9 views, core.shift_views), and so do the tested model's validation errors (lightning_impl.train
            errors(): the ladder's keep rule). Per-epoch validation scores plain images: it only picks the epoch,
            and nine views every epoch would cost as much as a third of the training. 0: off.
        norm_lr_scale: learning-rate multiplier for the BatchNorm parameters, whose weight decay is divided by
            the same factor so that it decays them as much per step as before (the airbench recipes train the
            BatchNorm shifts 64x faster than the weights: lightning_impl.models.whitened_cnn).
        lookahead: every so many steps, the weights and BatchNorm statistics become an exponential moving average of
            themselves (airbench's lookahead, LOOKAHEAD_DECAY above); the run's last step leaves the average in the
            net. 0: off.
        stem_bias_epochs: epochs during which the stem's bias (a net's ``whiten`` layer, WhitenedCNN) trains; frozen
            afterwards, as in airbench (which also ramps its rate down to 0 over them; here it follows the run's
            schedule). Freezing it also spares the backward pass the gradient of the first convolution's input.
            None: it trains throughout.
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
        shift_tta: int = 0,
        channels_last: bool = False,
        norm_lr_scale: float = 1.0,
        lookahead: int = 0,
        stem_bias_epochs: int | None = None,
    ) -> None:
        super().__init__()
        check_fraction("warmup_fraction", warmup_fraction, high_open=True)
        check_fraction("label_smoothing", label_smoothing)  # keras_ref.recipes refuses the same values
        shift_views.offsets(shift_tta)  # a ValueError for anything but a whole number of pixels >= 0
        if isinstance(norm_lr_scale, bool) or not isinstance(norm_lr_scale, (int, float)) or not 0 < norm_lr_scale <= MAX_FLOAT:
            raise ValueError(f"norm_lr_scale must be a positive number, got {norm_lr_scale!r}")  # keras_ref.recipes: the same
        for name, value in (("lookahead", lookahead), ("stem_bias_epochs", stem_bias_epochs)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if stem_bias_epochs is not None and not hasattr(net, "whiten"):
            name = type(net).__name__ if net is not None else "SpecifiedCNN (the default net)"
            raise ValueError(f"stem_bias_epochs: {name} has no stem (a ``whiten`` layer) to freeze")
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
        self.lookahead_average: list[torch.Tensor] | None = None
        self.lookahead_steps = 0  # the run's steps, set when training starts

    def on_fit_start(self) -> None:
        # A net with a data-derived first layer (WhitenedCNN) gets it from the first WHITENING_IMAGES training images
        # (the Keras trainer takes the same ones: core.whitening), once:
        # its ``whitened`` flag travels in checkpoints, so a resumed or fine-tuned run keeps the stem it trained with.
        if hasattr(self.net, "init_whitening") and not bool(self.net.whitened):
            datamodule = self.trainer.datamodule
            if datamodule is None or getattr(datamodule, "train_set", None) is None:
                raise RuntimeError(f"{type(self.net).__name__} initialises its first layer from training images: "
                                   "fit it with a DataModule that holds them (lightning_impl.data.datamodules)")
            self.net.init_whitening(stem_images(datamodule).to(self.device))

    def averaged(self) -> list[torch.Tensor]:
        """The tensors lookahead averages: the net's floating-point weights and buffers (BatchNorm statistics)."""
        return [t for t in self.net.state_dict(keep_vars=True).values() if t.is_floating_point()]

    def on_train_start(self) -> None:
        if not self.hparams.get("lookahead"):
            return
        steps = self.trainer.estimated_stepping_batches  # once: lookahead_step reads it on every step
        if steps == float("inf"):
            raise ValueError("lookahead ramps its average over the run's steps: give trainer.max_epochs or "
                             "trainer.max_steps")
        self.lookahead_steps = int(steps)
        if self.lookahead_average is None:  # a resumed run has its own
            self.lookahead_average = [t.detach().clone() for t in self.averaged()]

    def on_train_epoch_start(self) -> None:
        epochs = self.hparams.get("stem_bias_epochs")
        if epochs is not None:
            self.net.whiten.bias.requires_grad_(self.current_epoch < epochs)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.hparams.get("lookahead"):
            self.lookahead_step(self.global_step, self.lookahead_steps)

    @torch.no_grad()
    def lookahead_step(self, step: int, steps: int) -> None:
        """After optimiser step ``step`` of ``steps``: on every ``lookahead``-th step the average takes a share
        1 - keep of the net (keep = LOOKAHEAD_DECAY ** lookahead * (step / steps) ** 3) and the net becomes the
        average; the last step hands the net the average whole."""
        every = self.hparams.lookahead
        if step % every and step < steps:
            return
        keep = 1.0 if step >= steps else LOOKAHEAD_DECAY**every * (step / steps) ** 3
        live = [t.detach() for t in self.averaged()]
        torch._foreach_lerp_(self.lookahead_average, live, 1.0 - keep)
        torch._foreach_copy_(live, self.lookahead_average)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.lookahead_average is not None:  # a resumed run continues the same average
            checkpoint["lookahead_average"] = self.lookahead_average

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "lookahead_average" in checkpoint:
            self.lookahead_average = [t.to(self.device) for t in checkpoint["lookahead_average"]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:  # same values, another memory order
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The image's shifted views (``shift_tta``, core.shift_views: edges repeated), the image itself first."""
        pixels = self.hparams.get("shift_tta", 0)  # checkpoints from before the option have none
        if not pixels:
            return [x]
        h, w = x.shape[-2:]
        padded = F.pad(x, (pixels,) * 4, mode="replicate")
        return [padded[..., pixels + dy:pixels + dy + h, pixels + dx:pixels + dx + w]
                for dy, dx in shift_views.offsets(pixels)]

    def eval_logits(self, x: torch.Tensor, shifted: bool = True) -> torch.Tensor:
        """Logits for evaluation and prediction: the mean over the image's views: its shifts (``shift_tta``, unless
        ``shifted`` is False) and, with ``flip_tta``, their mirrors."""
        views = self.views(x) if shifted else [x]
        if self.hparams.flip_tta:
            views += [v.flip(-1) for v in views]
        logits = self(views[0])
        for view in views[1:]:  # one view at a time: nine copies of a large evaluation batch need not fit at once
            logits = logits + self(view)
        return logits / len(views)

    def _shared_step(self, batch, stage: str, metric: MulticlassAccuracy) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x) if stage == "train" else self.eval_logits(x, shifted=stage != "val")
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

    def on_test_epoch_start(self) -> None:
        self.test_predictions: list[torch.Tensor] = []

    def test_step(self, batch, batch_idx):
        # The logits go to the callbacks (RunFigures draws the confusion matrix and the misclassified images); the
        # predicted classes are kept, so that the run's record of which test images it gets wrong
        # (lightning_impl.train errors()) need not score the test set a second time.
        logits = self._shared_step(batch, "test", self.test_acc)[1].detach()
        self.test_predictions.append(logits.argmax(dim=1).cpu())
        return {"logits": logits}

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.eval_logits(x).softmax(dim=-1)

    def configure_optimizers(self):
        return configure_optimizers(self)
