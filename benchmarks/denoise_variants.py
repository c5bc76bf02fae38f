"""Validation PSNR of one denoiser variant at one noise level: how the improved U-Net's recipe was chosen.

    python benchmarks/denoise_variants.py --widths 32 64 128 --decoder-convs 2 --batch-size 32 --epochs 1
    python benchmarks/denoise_variants.py --widths 16 32 64 --decoder-convs 1 --batch-size 128 --precision 32-true

Trains UNetDAE on the whole Fashion-MNIST training split (fresh noise per batch) and scores it on the first
2,000 *validation* images' fixed noisy copy -- the test set is never read, so choices made from this script
do not leak into the reported results. Prints one line: the variant, its parameter count, the training wall
time and the validation PSNR/SSIM. docs/denoise.md lists the variants measured and the command of each.
Timings depend on the machine and on what else runs on it (the documented ones: one thread, one core).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import lightning as L
import torch

from lightning_impl.tasks.denoiser import Denoiser
from lightning_impl.models.denoising import UNetDAE
from lightning_impl.data.noise import NoisyDataModule
from core import flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigma", type=flags.unit_float, default=0.1)
    p.add_argument("--widths", type=flags.positive_int, nargs=3, default=(32, 64, 128))
    p.add_argument("--decoder-convs", type=flags.positive_int, default=2)
    p.add_argument("--batch-size", type=flags.positive_int, default=32)
    p.add_argument("--lr", type=flags.positive_float, default=3e-3)
    p.add_argument("--epochs", type=flags.positive_int, default=1)
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--loss", default="mse", choices=("mse", "bce", "log_mse"))
    p.add_argument("--val-images", type=flags.positive_int, default=2000)
    p.add_argument("--threads", type=flags.positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(0, verbose=False)
    data = NoisyDataModule(sigma=args.sigma, data_dir=args.data_dir, download=False, batch_size=args.batch_size,
                           val_limit=args.val_images, test_limit=1)
    net = UNetDAE(widths=tuple(args.widths), decoder_convs=args.decoder_convs)
    model = Denoiser(net, loss=args.loss, optimizer=lambda params: torch.optim.Adam(params, lr=args.lr))
    trainer = L.Trainer(max_epochs=args.epochs, precision=args.precision, devices=1, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False, logger=False)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    result = {
        **{k: v for k, v in vars(args).items() if k not in ("data_dir", "val_images")},
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_s": round(time.perf_counter() - start, 1),
        **{k: round(float(v), 3) for k, v in trainer.callback_metrics.items() if k in ("val_psnr", "val_ssim")},
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
