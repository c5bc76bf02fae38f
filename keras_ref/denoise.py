"""Train the Keras twin of a denoiser from the same YAML recipe as lightning_impl.train_denoiser, on the same data.

    python -m keras_ref.denoise --config configs/denoise_reference.yaml
    python -m keras_ref.denoise --config configs/denoise_unet.yaml --sigma 0.1
    python -m keras_ref.denoise --config configs/denoise_reference.yaml --limit-train 2048 --epochs 1 --quiet

The LightningCLI config is the recipe for both frameworks. What is shared, not re-implemented:
  * the data: ``NoisyDataModule`` is built from the config's ``data`` section, so the split, the fixed
    seeded validation/test noisy copies (``eval_pairs``) and the noise function are the Lightning ones;
  * training noise: ``FreshNoise`` draws new noise for every batch with ``lightning_impl.noise.add_noise``
    (a blind model's per-image sigma with ``sample_sigmas``), from a generator seeded by ``--seed``;
  * scoring: validation (for choosing the best epoch) and test go through ``lightning_impl.denoiser.score``;
  * the optimizer and the warm-up + cosine schedule: ``keras_ref.improved_cnn.make_optimizer``.
The net's ``init_args`` go to its twin in keras_ref.denoising_models; the losses below are written out as
the torch ones are (lightning_impl.denoiser.LOSSES), not taken from Keras' versions (whose clipping differs).
Not translated: ``trainer.precision`` (Keras trains in float32), ``accelerator``/``devices``, and the weight
initialisation (each framework keeps its own defaults: Glorot-uniform / zero bias in Keras, torch's
Kaiming-uniform; docs/denoise.md shows where that shows).

The run folder runs/<logger name>_keras/version_<n>/ holds recipe.yaml, metrics.csv (per epoch), the
best weights (on val_psnr) and metrics.json, with the keys lightning_impl.train_denoiser writes; its path
is the last line printed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import numpy as np
import torch
import yaml
from keras import ops

from keras_ref.denoising_models import denoising_ae, unet_dae
from keras_ref.improved_cnn import make_optimizer
from keras_ref.train import EpochTimer, new_run_dir
from lightning_impl.datasets import DataIntegrityError, DatasetUnavailableError
from lightning_impl.denoiser import Denoiser, score
from lightning_impl.noise import NoisyDataModule, add_noise, check_sigma, sample_sigmas, to_unit
from lightning_impl.train_denoiser import DEFAULTS, SEED

# Lightning nets and their Keras twins (same constructor arguments, but the input shape for in_channels).
NETS = {
    "lightning_impl.denoising_models.DenoisingAE": denoising_ae,
    "lightning_impl.denoising_models.UNetDAE": unet_dae,
}


def _mse(clean, restored):
    return ops.mean(ops.square(ops.subtract(restored, clean)))


def _bce(clean, restored):
    # As lightning_impl.denoiser._bce: clamp to [1e-6, 1 - 1e-6] (no gradient outside), mean over pixels.
    clean, p = ops.convert_to_tensor(clean), ops.clip(restored, 1e-6, 1.0 - 1e-6)
    return -ops.mean(clean * ops.log(p) + (1.0 - clean) * ops.log(1.0 - p))


def _log_mse(clean, restored):
    # As lightning_impl.denoiser._log_mse: mean over images of log10(per-image MSE + 1e-8).
    per_image = ops.mean(ops.square(ops.subtract(restored, clean)), axis=(1, 2, 3))
    return ops.mean(ops.log10(per_image + 1e-8))


LOSSES = {"mse": _mse, "bce": _bce, "log_mse": _log_mse}  # the keys of lightning_impl.denoiser.LOSSES


def nhwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).contiguous().numpy()


def nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


class FreshNoise(keras.utils.PyDataset):
    """(noisy, clean) NHWC batches of the clean uint8 training images: a new order every epoch and new noise
    for every batch (the torch side draws it in NoisyDataModule.on_after_batch_transfer)."""

    def __init__(self, clean: torch.Tensor, sigma, batch_size: int, seed: int) -> None:
        super().__init__()  # one worker, no multiprocessing: batches are drawn in order, so a seed fixes them
        self.clean, self.sigma, self.batch_size = clean, check_sigma(sigma), batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.clean) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        clean = to_unit(self.clean[self.order[i * self.batch_size : (i + 1) * self.batch_size]])
        noisy = add_noise(clean, sample_sigmas(len(clean), self.sigma, self.generator), self.generator)
        return nhwc(noisy), nhwc(clean)

    def on_epoch_end(self) -> None:
        self.order = torch.randperm(len(self.clean), generator=self.generator)


def predict(model: keras.Model, noisy: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Restored images (NCHW, unclipped: score clips) for noisy NCHW float images."""
    return nchw(model.predict(nhwc(noisy), batch_size=batch_size, verbose=0))


class ValidationScore(keras.callbacks.Callback):
    """Adds val_loss, val_psnr and val_ssim -- lightning_impl.denoiser.score on the fixed validation copy -- to
    each epoch's logs. Must come before ModelCheckpoint and CSVLogger in the callback list: they read them."""

    def __init__(self, noisy: torch.Tensor, clean: torch.Tensor, loss, batch_size: int) -> None:
        super().__init__()
        self.noisy, self.clean, self.loss, self.batch_size = noisy, clean, loss, batch_size

    def on_epoch_end(self, epoch, logs=None):
        restored = predict(self.model, self.noisy, self.batch_size)
        logs["val_loss"] = float(self.loss(nhwc(self.clean), nhwc(restored)))
        logs.update({f"val_{k}": v for k, v in score(restored, self.clean).items()})


def _defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.default is not inspect.Parameter.empty}


def load_recipe(config: dict | str | Path) -> dict:
    """A lightning_impl.train_denoiser config (dict or YAML path) -> the Keras trainer's recipe, the
    Lightning classes' own defaults filled in (read from their signatures, not repeated here)."""
    if not isinstance(config, dict):
        config = yaml.safe_load(Path(config).read_text())
    model = {**_defaults(Denoiser), **config.get("model", {})}
    net = model["net"] or "lightning_impl.denoising_models.DenoisingAE"
    net = {"class_path": net} if isinstance(net, str) else net  # a bare class path: its defaults
    net_class = net["class_path"] if "." in net["class_path"] else f"lightning_impl.denoising_models.{net['class_path']}"
    if net_class not in NETS:
        raise ValueError(f"no Keras twin for {net['class_path']!r}; known: {sorted(NETS)}")
    if model["loss"] not in LOSSES:
        raise ValueError(f"unknown loss {model['loss']!r}; choose one of {sorted(LOSSES)}")
    optimizer = model["optimizer"]
    if isinstance(optimizer, str):  # a bare class path: torch's defaults
        optimizer = {"class_path": optimizer, "init_args": {}}
    elif not isinstance(optimizer, dict):  # the Denoiser default, torch.optim.Adam, with torch's default lr
        optimizer = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}
    trainer = config.get("trainer", {})
    logger = {**DEFAULTS["trainer.logger"]["init_args"], **(trainer.get("logger") or {}).get("init_args", {})}
    return {
        "net": net_class,
        "net_args": {k: v for k, v in (net.get("init_args") or {}).items() if k != "in_channels"},
        "loss": model["loss"],
        "optimizer": optimizer,
        "schedule": model["schedule"],
        "warmup_fraction": model["warmup_fraction"],
        "data": {**_defaults(NoisyDataModule), **config.get("data", {})},
        "epochs": trainer.get("max_epochs", DEFAULTS["trainer.max_epochs"]),
        "seed": config.get("seed_everything", SEED),
        "runs_dir": logger["save_dir"],
        "name": logger["name"],
    }


def train(recipe: dict, verbose: int = 2, data: NoisyDataModule | None = None) -> dict:
    """Train on the recipe's data with fresh noise per batch, keep the best epoch on validation PSNR, test it."""
    keras.utils.set_random_seed(recipe["seed"])
    if data is None:
        data = NoisyDataModule(**recipe["data"])
    data.prepare_data()
    data.setup()
    hp = data.hparams
    train_data = FreshNoise(data.train_set.clean, data.sigma, hp.batch_size, recipe["seed"])
    val_noisy, val_clean = data.val_set.noisy, to_unit(data.val_set.clean)
    test_noisy, test_clean = data.test_set.noisy, to_unit(data.test_set.clean)

    channels = data.train_set.clean.shape[1]
    net = NETS[recipe["net"]](tuple(data.train_set.clean.shape[2:]) + (channels,), **recipe["net_args"])
    loss = LOSSES[recipe["loss"]]
    net.compile(
        optimizer=make_optimizer(recipe["optimizer"], recipe["epochs"] * len(train_data), recipe["schedule"], recipe["warmup_fraction"]),
        loss=loss,
    )

    run = new_run_dir(Path(recipe["runs_dir"]), f"{recipe['name']}_keras")
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    best = run / "checkpoints" / "best.weights.h5"
    best.parent.mkdir()
    timer = EpochTimer(len(data.train_set))
    start = time.perf_counter()
    history = net.fit(
        train_data, epochs=recipe["epochs"], verbose=verbose, shuffle=False,  # FreshNoise shuffles, seeded
        callbacks=[  # ValidationScore first: the others read what it logs
            ValidationScore(val_noisy, val_clean, loss, hp.eval_batch_size),
            keras.callbacks.ModelCheckpoint(best, monitor="val_psnr", mode="max", save_best_only=True, save_weights_only=True),
            keras.callbacks.CSVLogger(run / "metrics.csv"),
            timer,
        ],
    )
    train_s = time.perf_counter() - start
    net.load_weights(best)  # the epoch selected on validation, as lightning_impl.train_denoiser tests
    restored = predict(net, test_noisy, hp.eval_batch_size)
    test = score(restored, test_clean)
    metrics = {
        "framework": "keras",
        "dataset": hp.dataset,
        "model": net.name,
        "sigma": data.sigma,
        "eval_sigma": data.eval_sigma,
        "loss": recipe["loss"],
        # torch's count (its parameters, not its buffers): BatchNorm statistics, which Keras counts as
        # non-trainable weights, are left out, as lightning_impl.train_denoiser leaves out the buffers.
        "parameters": sum(int(np.prod(w.shape)) for w in net.trainable_weights),
        "non_trainable_weights": sum(int(np.prod(w.shape)) for w in net.non_trainable_weights),
        "seed": recipe["seed"],
        "epochs": len(history.history["loss"]),
        "train_images": len(data.train_set),
        "test_images": len(data.test_set),
        "best_checkpoint": str(best),
        "best_val_psnr": max(history.history["val_psnr"]),
        "test_loss": float(loss(nhwc(test_clean), nhwc(restored))),
        "test_psnr": test["psnr"],
        "test_ssim": test["ssim"],
        "train_s": train_s,
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
        "run_dir": str(run.resolve()),
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a lightning_impl.train_denoiser YAML, e.g. configs/denoise_reference.yaml")
    p.add_argument("--epochs", type=int, help="override trainer.max_epochs")
    p.add_argument("--seed", type=int, help="override seed_everything (initialisation, shuffling, training noise)")
    p.add_argument("--sigma", type=float, nargs="+", metavar="SIGMA",
                   help="override data.sigma: one level, or LOW HIGH for a blind model (Lightning: --data.sigma)")
    p.add_argument("--eval-sigma", type=float, nargs="+", metavar="SIGMA",
                   help="override data.eval_sigma, the noise of the fixed validation/test copies (Lightning: --data.eval_sigma)")
    p.add_argument("--batch-size", type=int, help="override data.batch_size (Lightning: --data.batch_size)")
    p.add_argument("--limit-train", type=int, metavar="N", help="first N training images only (Lightning: --data.train_limit)")
    p.add_argument("--limit-val", type=int, metavar="N", help="first N validation images only (Lightning: --data.val_limit)")
    p.add_argument("--limit-test", type=int, metavar="N", help="first N test images only (Lightning: --data.test_limit)")
    p.add_argument("--data-dir", default=None, help="default: $LIGHTNING_IMPL_DATA, else ~/.cache/lightning_impl/data")
    p.add_argument("--runs-dir", help="override the logger's save_dir (default runs)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras progress: 0 silent, 1 bar, 2 a line per epoch")
    p.add_argument("--quiet", dest="verbose", action="store_const", const=0, help="same as --verbose 0")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "limit_train", "limit_val", "limit_test"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("sigma", "eval_sigma"):
        if getattr(args, name) is not None and len(getattr(args, name)) > 2:
            p.error(f"--{name.replace('_', '-')} takes one level or a LOW HIGH range")
    return args


def _sigma_arg(values: list[float] | None):
    """--sigma 0.3 -> 0.3; --sigma 0.05 0.55 -> [0.05, 0.55] (a blind range, as in the YAML)."""
    return values if values is None or len(values) == 2 else values[0]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    overrides = {"epochs": args.epochs, "seed": args.seed, "runs_dir": args.runs_dir}
    data_overrides = {
        "sigma": _sigma_arg(args.sigma), "eval_sigma": _sigma_arg(args.eval_sigma),
        "batch_size": args.batch_size, "train_limit": args.limit_train, "val_limit": args.limit_val, "test_limit": args.limit_test,
        "data_dir": args.data_dir,
    }
    try:  # a recipe Keras cannot follow, or a bad sigma or dataset: a message, not a traceback
        recipe = load_recipe(args.config)
        recipe.update({k: v for k, v in overrides.items() if v is not None})
        recipe["data"].update({k: v for k, v in data_overrides.items() if v is not None})
        data = NoisyDataModule(**recipe["data"])
    except ValueError as err:
        sys.exit(f"error: {err}")
    try:
        metrics = train(recipe, args.verbose, data)
    except (DatasetUnavailableError, DataIntegrityError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps({k: metrics[k] for k in ("test_psnr", "test_ssim", "best_val_psnr", "epochs")}))
    print(metrics["run_dir"])
    return metrics


if __name__ == "__main__":
    main()
