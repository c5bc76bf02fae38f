"""Train the Keras twin of a denoiser recipe on the same data as lightning_impl.train_denoiser, then test it.

    python -m keras_ref.train_denoiser                                        # configs/denoise_reference.yaml
    python -m keras_ref.train_denoiser --config configs/denoise_unet.yaml --sigma 0.1
    python -m keras_ref.train_denoiser --limit-train 2048 --epochs 1 --quiet

The LightningCLI YAML is the recipe for both frameworks (keras_ref.recipes translates it). What is shared, not
re-implemented:
  * the data: ``core.noise.NoisySplit`` is built from the recipe's ``data`` section, as Lightning's DataModule
    builds it, so the split, the fixed seeded validation/test noisy copies and the noise function are the same;
  * training noise: ``FreshNoise`` draws new noise for every batch with ``core.noise.add_noise``
    (a blind model's per-image sigma with ``sample_sigmas``), from a generator seeded by ``--seed``;
  * scoring: validation (for choosing the best epoch) and test go through ``core.image_quality.score``.
The losses below are written out as the torch ones are (lightning_impl.tasks.denoiser.LOSSES), not taken from
Keras' versions (whose clipping differs). The twin's weights are drawn as torch draws them (keras_ref.torch_like).

The run folder runs/<recipe name>_keras/version_<n>/ holds metrics.csv (per epoch), the best weights (on
val_psnr), recipe.yaml, metrics.json, with the keys lightning_impl.train_denoiser writes, model.keras and
model_card.json (for keras_ref.predict), and figures/ (learning curves, clean / noisy / denoised test images);
its path is the last line printed. ``--resume RUN_DIR`` goes on with an interrupted run (keras_ref.fit).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from keras import ops

from keras_ref import backend
from keras_ref.fit import ResumeError, fit_and_test, resumable_recipe, save_atomically
from keras_ref.models import TWINS
from keras_ref.torch_like import torch_init
from keras_ref.recipes import DENOISER_DEFAULT, RecipeError, denoiser_recipe, dtype_policy, make_optimizer
from core import flags, plots
from core.order import epoch_order, epoch_seed
from core.noise import NoisySplit, add_noise, check_sigma, sample_sigmas, to_unit
from core.image_quality import score
from core.runs import data_errors, write_json


def _mse(clean, restored):
    return ops.mean(ops.square(ops.subtract(restored, clean)))


def _bce(clean, restored):
    # As lightning_impl.tasks.denoiser._bce: clamp to [1e-6, 1 - 1e-6] (no gradient outside), mean over pixels.
    clean, p = ops.convert_to_tensor(clean), ops.clip(restored, 1e-6, 1.0 - 1e-6)
    return -ops.mean(clean * ops.log(p) + (1.0 - clean) * ops.log(1.0 - p))


def _log_mse(clean, restored):
    # As lightning_impl.tasks.denoiser._log_mse: mean over images of log10(per-image MSE + 1e-8).
    per_image = ops.mean(ops.square(ops.subtract(restored, clean)), axis=(1, 2, 3))
    return ops.mean(ops.log10(per_image + 1e-8))


LOSSES = {"mse": _mse, "bce": _bce, "log_mse": _log_mse}  # the keys of lightning_impl.tasks.denoiser.LOSSES


def nhwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).contiguous().numpy()


def nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


class FreshNoise(keras.utils.PyDataset):
    """(noisy, clean) NHWC batches of the clean uint8 training images: Lightning's order of the images for the
    epoch last given to ``set_epoch`` (keras_ref.epochs.SeedEachEpoch calls it before every epoch) and new noise
    for every batch, from a generator reseeded by (seed, epoch) -- the torch side draws it in
    lightning_impl.data.noise.NoisyDataModule.on_after_batch_transfer. One worker, no multiprocessing: batches are made in order."""

    def __init__(self, clean: torch.Tensor, sigma, batch_size: int, seed: int) -> None:
        super().__init__()
        self.clean, self.sigma, self.batch_size, self.seed = clean, check_sigma(sigma), batch_size, seed
        self.generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = epoch_order(len(self.clean), self.seed, epoch)
        self.generator.manual_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return math.ceil(len(self.clean) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        clean = to_unit(self.clean[self.order[i * self.batch_size : (i + 1) * self.batch_size]])
        noisy = add_noise(clean, sample_sigmas(len(clean), self.sigma, self.generator), self.generator)
        return nhwc(noisy), nhwc(clean)


def predict(model: keras.Model, noisy: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Restored images (NCHW, unclipped: score clips) for noisy NCHW float images."""
    return nchw(model.predict(nhwc(noisy), batch_size=batch_size, verbose=0))


def evaluate(model: keras.Model, noisy: torch.Tensor, clean: torch.Tensor, loss, batch_size: int) -> dict[str, float]:
    """loss, psnr and ssim of the model's restorations of ``noisy`` (validation and test alike)."""
    return scores(predict(model, noisy, batch_size), clean, loss)


def scores(restored: torch.Tensor, clean: torch.Tensor, loss) -> dict[str, float]:
    return {"loss": float(loss(nhwc(clean), nhwc(restored))), **score(restored, clean)}


class ValidationScore(keras.callbacks.Callback):
    """Adds val_loss, val_psnr and val_ssim -- core.image_quality.score on the fixed validation copy -- to
    each epoch's logs. Must come before ModelCheckpoint and CSVLogger in the callback list: they read them."""

    def __init__(self, noisy: torch.Tensor, clean: torch.Tensor, loss, batch_size: int) -> None:
        super().__init__()
        self.noisy, self.clean, self.loss, self.batch_size = noisy, clean, loss, batch_size

    def on_epoch_end(self, epoch, logs=None):
        logs.update({f"val_{k}": v for k, v in evaluate(self.model, self.noisy, self.clean, self.loss, self.batch_size).items()})


def build(recipe: dict, input_shape: tuple[int, int, int], steps_per_epoch: int) -> keras.Model:
    """The recipe's twin (torch's initialisation), compiled with its loss and its optimizer over the whole run."""
    with dtype_policy(recipe.get("dtype_policy", "float32")):  # the Lightning run's precision
        net = torch_init(TWINS[recipe["net"]](input_shape, **recipe["net_args"]), recipe["seed"])
    net.compile(optimizer=make_optimizer(recipe["optimizer"], recipe["epochs"] * steps_per_epoch, recipe["schedule"],
                                         recipe["warmup_fraction"]), loss=LOSSES[recipe["loss"]])
    return net


def save_for_prediction(run: Path, net: keras.Model, dataset: str, channels: int) -> None:
    """model.keras (the net with the selected weights) and model_card.json, which keras_ref.predict reads."""
    save_atomically(net.save, run / "model.keras")
    h, w = net.input_shape[1:3]
    write_json(run / "model_card.json", {"task": "denoiser", "dataset": dataset, "input_shape": [channels, h, w],
                                         "model": "model.keras"})


def train(recipe: dict, verbose: int = 2, data: NoisySplit | None = None, runs_dir: str | None = None,
          resume: Path | None = None) -> dict:
    """Train on the recipe's data with fresh noise per batch, keep the best epoch on validation PSNR, test it.
    ``resume``: the run folder of an interrupted run, whose recipe this is."""
    if recipe["loss"] not in LOSSES:
        raise RecipeError(f"model.loss: unknown loss {recipe['loss']!r}; choose one of {sorted(LOSSES)}")
    keras.utils.set_random_seed(recipe["seed"])
    data = data or NoisySplit(**recipe["data"])
    data.prepare()
    data.setup()
    train_data = FreshNoise(data.train_set.clean, data.sigma, data.batch_size, recipe["seed"])
    val_noisy, val_clean = data.val_set.noisy, to_unit(data.val_set.clean)
    test_noisy, test_clean = data.test_set.noisy, to_unit(data.test_set.clean)

    channels = data.train_set.clean.shape[1]
    net = build(recipe, tuple(data.train_set.clean.shape[2:]) + (channels,), len(train_data))
    loss = LOSSES[recipe["loss"]]

    tested = {}  # the test restorations, drawn by figures() without a second prediction

    def test() -> dict:
        tested["restored"] = predict(net, test_noisy, data.eval_batch_size)
        return {f"test_{k}": v for k, v in scores(tested["restored"], test_clean, loss).items()}

    def figures(folder, title: str) -> None:
        noisy, clean, restored = test_noisy[:8], test_clean[:8], tested["restored"][:8].clamp(0.0, 1.0)
        plots.denoise_grid(nhwc(clean), nhwc(noisy), nhwc(restored), folder / "denoise_grid.png", f"{title}, test")

    return fit_and_test(
        net, net, train_data,  # FreshNoise orders the images and draws the noise, by (seed, epoch)
        callbacks=[ValidationScore(val_noisy, val_clean, loss, data.eval_batch_size)],  # first: the others read its logs
        recipe=recipe, monitor="val_psnr", train_images=len(data.train_set), test=test, runs_dir=runs_dir,
        resume=resume, verbose=verbose, after_best=lambda run: save_for_prediction(run, net, data.dataset_name, channels),
        figures=figures,
        describe={"dataset": data.dataset_name, "model": net.name, "sigma": data.sigma, "eval_sigma": data.eval_sigma,
                  "loss": recipe["loss"], "train_images": len(data.train_set), "test_images": len(data.test_set)},
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DENOISER_DEFAULT, help="a denoiser's LightningCLI YAML (default: %(default)s)")
    flags.add(p, "sigma", "eval_sigma", "batch_size", "epochs", "seed", "data_dir", "runs_dir", "limit_train",
              "limit_val", "limit_test", "resume", "backend", "quiet", "verbose", runs_dir=None)
    args = backend.parse_args(p, argv)
    if args.resume is not None:
        return resume_args(p, args, argv)
    for name in ("sigma", "eval_sigma"):
        if getattr(args, name) is not None and len(getattr(args, name)) > 2:
            p.error(f"--{name.replace('_', '-')} takes one level or a LOW HIGH range")
    overrides = {"sigma": _sigma_arg(args.sigma), "eval_sigma": _sigma_arg(args.eval_sigma), "batch_size": args.batch_size,
                 "train_limit": args.limit_train, "val_limit": args.limit_val, "test_limit": args.limit_test,
                 "data_dir": args.data_dir}
    try:  # a recipe Keras cannot follow, or a bad sigma or dataset: a message, not a traceback
        args.recipe = denoiser_recipe(args.config)
        args.recipe.update({k: v for k in ("epochs", "seed") if (v := getattr(args, k)) is not None})
        args.recipe["data"].update({k: v for k, v in overrides.items() if v is not None})
        args.data = NoisySplit(**args.recipe["data"])
    except (ValueError, OSError) as err:
        p.error(f"--config {args.config}: {err}")
    return args


def resume_args(p: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None) -> argparse.Namespace:
    """``--resume RUN_DIR``: the run's own recipe.yaml (recipe, seed, noise, images); ``--epochs N`` trains on,
    ``--data-dir`` and the output flags may change, nothing else."""
    given = {a.split("=", 1)[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
    for fixed in ("--config", "--seed", "--sigma", "--eval-sigma", "--batch-size", "--limit-train", "--limit-val",
                  "--limit-test", "--runs-dir"):
        if fixed in given:
            p.error(f"{fixed}: a resumed run keeps its own (recipe.yaml in {args.resume}); give only --epochs to train on")
    try:
        args.recipe = resumable_recipe(args.resume, args.epochs, "denoising")
        if args.data_dir is not None:
            args.recipe["data"]["data_dir"] = args.data_dir
        args.data = NoisySplit(**args.recipe["data"])
    except (ResumeError, ValueError, OSError) as err:
        p.error(str(err))
    return args


def _sigma_arg(values: list[float] | None):
    """--sigma 0.3 -> 0.3; --sigma 0.05 0.55 -> [0.05, 0.55] (a blind range, as in the YAML)."""
    return values if values is None or len(values) == 2 else values[0]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with data_errors():
        metrics = train(args.recipe, 0 if args.quiet else 1 if args.verbose else 2, args.data, args.runs_dir, args.resume)
    print(json.dumps({k: metrics[k] for k in ("test_psnr", "test_ssim", "best_val_psnr", "epochs")}))
    print(metrics["run_dir"])
    return metrics


if __name__ == "__main__":
    main()
