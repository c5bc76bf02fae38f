"""Train one denoiser on noisy Fashion-MNIST, then score its best checkpoint on the fixed noisy test copy.

    python -m lightning_impl.train_denoiser                # configs/denoise_reference.yaml
    python -m lightning_impl.train_denoiser --config configs/denoise_unet.yaml --data.sigma 0.1
    python -m lightning_impl.train_denoiser --config configs/denoise_reference.yaml --data.sigma 0.5 --trainer.max_epochs 4
    python -m lightning_impl.train_denoiser --help

A LightningCLI over ``Denoiser`` (lightning_impl.tasks.denoiser) and ``NoisyDataModule`` (core.noise):
every constructor argument is a flag (``--model.loss bce``, ``--data.sigma "[0.05, 0.55]"`` for a blind
model, ``--data.train_limit 2048`` for a quick run). The Keras twin reads the same YAML:
``python -m keras_ref.train_denoiser --config configs/denoise_reference.yaml``. The default recipe is
configs/denoise_reference.yaml; a --config and flags are merged over it.

Like ``python -m lightning_impl.train``, each run gets runs/<name>/version_<n>/ with config.yaml,
metrics.csv, checkpoints/ (best on val_psnr, and last) and metrics.json (test_psnr, test_ssim, parameters,
epochs, seed, training time); its path is the last line printed. One model, one noise level: the whole
experiment (every sigma, classical filters, figures) is ``python -m experiments.denoising``.
"""

from __future__ import annotations

from lightning_impl.cli import ProjectCLI, fit_then_test_best, make_cli, run_cli
from lightning_impl.data.noise import NoisyDataModule
from lightning_impl.tasks.denoiser import Denoiser


class DenoiserCLI(ProjectCLI):
    recipe = "denoise_reference.yaml"  # the default run, in configs/ (keras_ref.train_denoiser reads it too)

SUMMARY = ("test_psnr", "test_ssim", "best_val_psnr", "epochs")  # the line printed before the run path


def fit_and_test(cli: DenoiserCLI) -> dict:
    results, checkpoint, timer, train_s = fit_then_test_best(cli)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    best = trainer.checkpoint_callback.best_model_score
    return {
        "framework": "lightning",
        "dataset": data.hparams.dataset,
        "model": type(model.net).__name__,
        "sigma": data.sigma,
        "eval_sigma": data.eval_sigma,
        "loss": model.hparams.loss,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "seed": cli.config.get("seed_everything"),
        "epochs": trainer.current_epoch,
        "train_images": len(data.train_set),
        "test_images": len(data.test_set),
        "best_checkpoint": checkpoint,
        "best_val_psnr": float(best) if best is not None else float("nan"),
        **results,  # test_loss, test_psnr, test_ssim
        "train_s": train_s,
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
        "world_size": trainer.world_size,
    }


def main(args: list[str] | None = None) -> dict:
    return run_cli(lambda: make_cli(DenoiserCLI, Denoiser, NoisyDataModule, args), fit_and_test, SUMMARY)


if __name__ == "__main__":
    main()
