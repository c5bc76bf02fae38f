"""Train one denoiser on noisy Fashion-MNIST, then score its best checkpoint on the fixed noisy test copy.

    python -m lightning_impl.train_denoiser --config configs/denoise_reference.yaml
    python -m lightning_impl.train_denoiser --config configs/denoise_unet.yaml --data.sigma 0.1
    python -m lightning_impl.train_denoiser --config configs/denoise_reference.yaml --data.sigma 0.5 --trainer.max_epochs 4
    python -m lightning_impl.train_denoiser --help

A LightningCLI over ``Denoiser`` (lightning_impl.denoiser) and ``NoisyDataModule`` (lightning_impl.noise):
every constructor argument is a flag (``--model.loss bce``, ``--data.sigma "[0.05, 0.55]"`` for a blind
model, ``--data.train_limit 2048`` for a quick run). The Keras twin reads the same YAML:
``python -m keras_ref.denoise --config configs/denoise_reference.yaml``.

Like ``python -m lightning_impl.train``, each run gets runs/<name>/version_<n>/ with config.yaml,
metrics.csv, checkpoints/ (best on val_psnr, and last) and metrics.json (test_psnr, test_ssim, parameters,
epochs, seed, training time); its path is the last line printed. One model, one noise level: the whole
experiment (every sigma, classical filters, figures) is ``python -m lightning_impl.denoise``.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_impl.callbacks import EpochTimer
from lightning_impl.denoiser import Denoiser
from lightning_impl.noise import NoisyDataModule
from lightning_impl.train import fit_then_test_best, run_cli

# Defaults when no --config is given (keras_ref.denoise reads them too): the reference recipe lives in
# configs/denoise_reference.yaml; these name the run, choose the checkpoint as lightning_impl.train does,
# and keep Lightning's 1000-epoch default away from a config that forgets max_epochs.
SEED = 0
DEFAULTS = {
    "trainer.max_epochs": 2,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": "runs", "name": "denoise"},
    },
    "checkpoint.monitor": "val_psnr",
    "checkpoint.mode": "max",
    "checkpoint.filename": "best-{epoch}-{val_psnr:.2f}",
    "checkpoint.save_last": True,
}
SUMMARY = ("test_psnr", "test_ssim", "best_val_psnr", "epochs")  # the line printed before the run path


class DenoiserCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EpochTimer, "timer")
        parser.set_defaults(DEFAULTS)


def fit_and_test(cli: LightningCLI) -> dict:
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


def main(args: list[str] | None = None) -> dict | None:
    return run_cli(
        lambda: DenoiserCLI(
            Denoiser, NoisyDataModule, run=False, args=args,
            seed_everything_default=SEED, save_config_kwargs={"overwrite": False},
        ),
        fit_and_test,
        SUMMARY,
    )


if __name__ == "__main__":
    main()
