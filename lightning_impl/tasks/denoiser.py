"""The denoising task: reconstruction loss, PSNR/SSIM and optimisation around any image-to-image network."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection

from core.image_quality import image_metrics
from lightning_impl.models.denoising import DenoisingAE
from lightning_impl.tasks.schedules import check_fraction, configure_optimizers
from lightning_impl.tasks.train_logging import TrainLogging

def _bce(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    # Binary cross-entropy needs outputs in (0, 1): exact for sigmoid outputs; an unbounded output (the
    # residual UNetDAE) is clamped, and gets no gradient where it lies outside.
    return F.binary_cross_entropy(restored.clamp(1e-6, 1 - 1e-6), clean)


def _log_mse(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    # The mean over images of log10 of each image's MSE: minus the reported metric (mean per-image PSNR) / 10.
    # Pooled MSE weights an image by its error, so detailed images dominate it; this weights every image
    # alike, as the metric does. The 1e-8 floor (80 dB) only keeps the log finite.
    per_image = (restored - clean).square().flatten(1).mean(1)
    return torch.log10(per_image + 1e-8).mean()


LOSSES = {"mse": F.mse_loss, "bce": _bce, "log_mse": _log_mse}


class Denoiser(TrainLogging):
    """Trains ``net`` to map a noisy batch to the clean one; batches are (noisy, clean) in [0, 1].

    Args:
        net: the architecture, images in [0, 1] to images in [0, 1]; default the reference DenoisingAE.
        loss: ``mse``, ``bce`` (binary cross-entropy on the output probabilities, as Keras computes
            it; the clean pixels act as soft targets) or ``log_mse`` (mean over images of log10 per-image
            MSE, i.e. the reported mean PSNR up to a factor -10). docs/denoise.md has the measurement behind the choice.
        optimizer: a callable taking the parameters (default Adam); ``--model.optimizer.lr`` on the CLI.
        schedule: ``warmup_cosine`` (per step over the whole run) or ``constant``.
        warmup_fraction: share of the steps spent warming up.
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        loss: Literal["mse", "bce", "log_mse"] = "mse",
        optimizer: OptimizerCallable = torch.optim.Adam,
        schedule: Literal["warmup_cosine", "constant"] = "warmup_cosine",
        warmup_fraction: float = 0.05,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}")
        check_fraction("warmup_fraction", warmup_fraction, high_open=True)
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net if net is not None else DenoisingAE()
        self.optimizer = optimizer
        self.loss_fn = LOSSES[loss]
        self.val_metrics, self.test_metrics = image_metrics("val_"), image_metrics("test_")

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.net(noisy)

    def training_step(self, batch, batch_idx):
        noisy, clean = batch
        loss = self.loss_fn(self(noisy), clean)
        self.log_train_step(loss, len(clean), batch_idx)
        return loss

    def _eval_step(self, batch, stage: str, metrics: MetricCollection) -> torch.Tensor:
        noisy, clean = batch
        restored = self(noisy)
        self.log(f"{stage}_loss", self.loss_fn(restored, clean), on_epoch=True, sync_dist=True, batch_size=len(clean))
        metrics.update(restored.clamp(0.0, 1.0), clean)
        self.log_dict(metrics, on_epoch=True, prog_bar=True)
        return restored

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        # The restorations go to the callbacks (RunFigures draws the first few beside their clean and noisy images).
        return {"restored": self._eval_step(batch, "test", self.test_metrics).detach()}

    def predict_step(self, batch, batch_idx):
        noisy = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(noisy).clamp(0.0, 1.0)

    def configure_optimizers(self):
        return configure_optimizers(self)
