"""How restored images are scored: PSNR and SSIM, the same function for networks and classical filters in both
frameworks (torchmetrics only: no Lightning, no Keras)."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure


def image_metrics(prefix: str = "") -> MetricCollection:
    """PSNR and SSIM on [0, 1] images (data_range=1), each the mean over images.

    PSNR is computed per image (``dim=(1, 2, 3)``) then averaged -- the convention of the denoising
    literature; the PSNR of the pooled MSE differs by a few hundredths of a dB on Fashion-MNIST.
    The classical baselines are scored with this same collection (experiments.denoising.score).
    """
    return MetricCollection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean"),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
    )


@torch.no_grad()
def score(restored: torch.Tensor, clean: torch.Tensor, ssim: bool = True, batch_size: int = 1000) -> dict[str, float]:
    """Mean PSNR (and SSIM) of restored images against clean ones, both in [0, 1]: (N, H, W) or (N, C, H, W).

    Every method of the experiment -- networks and classical filters alike -- is scored by this function.
    Restored images are clipped to [0, 1] first, as any displayed or saved image would be.
    """
    if restored.shape != clean.shape:
        raise ValueError(f"restored {tuple(restored.shape)} and clean {tuple(clean.shape)} images differ in shape")
    if restored.dim() == 3:
        restored, clean = restored.unsqueeze(1), clean.unsqueeze(1)
    metrics = image_metrics()
    if not ssim:
        metrics = MetricCollection({"psnr": metrics["psnr"]})
    for i in range(0, len(clean), batch_size):
        metrics.update(restored[i : i + batch_size].float().clamp(0.0, 1.0), clean[i : i + batch_size].float())
    return {k: float(v) for k, v in metrics.compute().items()}


@torch.no_grad()
def psnr_per_image(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of each image, clipped to [0, 1] as ``score`` clips it: their mean is ``score``'s PSNR. Two methods
    scored on the same images are compared image by image (``paired_psnr``), not by their means alone."""
    if restored.shape != clean.shape:
        raise ValueError(f"restored {tuple(restored.shape)} and clean {tuple(clean.shape)} images differ in shape")
    mse = (restored.float().clamp(0.0, 1.0) - clean.float()).square().flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse)


def paired_psnr(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean of a - b, two-sided p of the paired t-test) over per-image PSNRs of two methods on the same images:
    each image is its own control, so the test sees the gain, not how hard the images are."""
    from scipy import stats

    if a.shape != b.shape or a.dim() != 1 or len(a) < 2:
        raise ValueError(f"two per-image PSNR vectors of one length >= 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    diff = (a - b).double()
    mean = float(diff.mean())
    if float(diff.std()) == 0.0:  # no spread: the t statistic is undefined, the answer is not
        return mean, (1.0 if mean == 0.0 else 0.0)
    return mean, float(stats.ttest_1samp(diff.numpy(), 0.0).pvalue)  # the paired t-test is this, on the differences
