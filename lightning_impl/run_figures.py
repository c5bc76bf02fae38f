"""RunFigures: every tested run draws itself into <run>/figures/ (core.plots does the drawing)."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from core import plots


class RunFigures(L.Callback):
    """At the end of testing, writes into ``<run folder>/figures/``: ``learning_curves.png`` (from the run's
    metrics.csv) and, for a classifier, ``confusion_matrix.png`` and ``misclassified.png`` (the most
    confidently wrong test images), for a denoiser ``denoise_grid.png`` (the first test images).

    Works in the test stage only (training steps pay nothing). It reads what ``test_step`` returns: a dict
    with ``logits`` (classifier) or ``restored`` (denoiser). A failure to draw warns; it never costs the run.

    Args:
        enabled: draw the figures (``--figures.enabled false``: none).
        misclassified: how many misclassified images the gallery shows at most.
        denoised: how many images the denoising grid shows.
    """

    def __init__(self, enabled: bool = True, misclassified: int = 24, denoised: int = 8) -> None:
        self.enabled, self.misclassified, self.denoised = enabled, misclassified, denoised

    def on_test_start(self, trainer, pl_module) -> None:
        self._confmat = None  # created at the first batch: the number of classes is the logits' width
        self._wrong = None  # (images, true, pred, confidence) of the most confidently wrong so far, on the device
        self._grid = None  # (clean, noisy, restored) of the first test images, on the CPU

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.enabled or not isinstance(outputs, dict):
            return
        if "logits" in outputs:
            self._classifier_batch(outputs["logits"].detach(), *batch)
        elif "restored" in outputs and self._grid is None:
            noisy, clean = batch
            n = self.denoised
            self._grid = tuple(t[:n].detach().float().cpu() for t in (clean, noisy, outputs["restored"].clamp(0, 1)))

    def _classifier_batch(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        if self._confmat is None:
            self._confmat = MulticlassConfusionMatrix(logits.shape[-1], validate_args=False).to(logits.device)
        self._confmat.update(logits, y)
        confidence, pred = logits.float().softmax(-1).max(-1)
        wrong = (pred != y).nonzero().flatten()
        # Only the batch's own top candidates are merged in: memory stays at `misclassified` images.
        wrong = wrong[confidence[wrong].argsort(descending=True)[: self.misclassified]]
        batch = (x[wrong].detach().float(), y[wrong], pred[wrong], confidence[wrong])
        if self._wrong is not None:
            batch = tuple(torch.cat(pair) for pair in zip(self._wrong, batch))
        keep = batch[3].argsort(descending=True)[: self.misclassified]
        self._wrong = tuple(t[keep] for t in batch)

    def on_test_end(self, trainer, pl_module) -> None:
        if not self.enabled:
            return
        # The run folder (ProjectCLI puts the CSV logger first, so it is the CSV logger's); a collective under DDP
        run_dir = Path(trainer.log_dir)
        cm = self._confmat.compute() if self._confmat is not None else None  # synchronised over processes
        wrong = self._gather_wrong(pl_module) if self._wrong is not None else None
        if not trainer.is_global_zero:
            return
        try:
            self._draw(trainer.datamodule, run_dir, cm, wrong)
        except Exception as err:  # noqa: BLE001  a figure is never worth a finished run
            warnings.warn(f"RunFigures: the figures could not be drawn ({type(err).__name__}: {err})", stacklevel=1)

    def _gather_wrong(self, pl_module):
        """The most confidently wrong images over all processes (each holds its own shard's)."""
        if pl_module.trainer.world_size == 1:
            return self._wrong
        n, (images, true, pred, conf) = len(self._wrong[0]), self._wrong
        pad = self.misclassified - n  # all_gather needs equal shapes: pad with confidence -1, dropped below
        padded = (torch.cat([images, images.new_zeros(pad, *images.shape[1:])]),
                  torch.cat([true, true.new_zeros(pad)]), torch.cat([pred, pred.new_zeros(pad)]),
                  torch.cat([conf, conf.new_full((pad,), -1.0)]))
        gathered = [t.flatten(0, 1) for t in pl_module.all_gather(padded)]
        keep = gathered[3].argsort(descending=True)[: self.misclassified]
        keep = keep[gathered[3][keep] >= 0]
        return tuple(t[keep] for t in gathered)

    def _draw(self, data, run_dir: Path, cm, wrong) -> None:
        folder, title = run_dir / "figures", f"{run_dir.parent.name}/{run_dir.name}"
        if (run_dir / "metrics.csv").is_file():  # absent without a CSV logger: no curves then
            table = plots.epoch_table(run_dir / "metrics.csv")
            if table:
                plots.learning_curves({"": table}, folder / "learning_curves.png", title)
        if cm is not None:
            spec = getattr(data, "spec", None)
            classes = list(spec.classes) if spec is not None else [str(i) for i in range(len(cm))]
            plots.confusion_matrix(cm.cpu().numpy(), classes, folder / "confusion_matrix.png", f"{title}, test")
            images, true, pred, conf = (t.cpu() for t in wrong)
            plots.misclassified_gallery(_for_display(images, data), true.numpy(), pred.numpy(), conf.numpy(), classes,
                                        folder / "misclassified.png", f"{title}: most confidently wrong test images")
        if self._grid is not None:
            clean, noisy, restored = (nhwc(t) for t in self._grid)
            plots.denoise_grid(clean, noisy, restored, folder / "denoise_grid.png", f"{title}, test")


def nhwc(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) -> numpy (N, H, W, C)."""
    return images.permute(0, 2, 3, 1).numpy()


def _for_display(images: torch.Tensor, data) -> np.ndarray:
    """Normalised (N, C, H, W) batches back to [0, 1] pixels with the DataModule's statistics; without them,
    each image stretched to [0, 1]."""
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if mean is not None and std is not None:
        c = images.shape[1]
        images = images * std.view(1, c, 1, 1) + mean.view(1, c, 1, 1)
    elif len(images):
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        images = (images - low) / (high - low).clamp_min(1e-12)
    return nhwc(images.clamp(0, 1))
